from c10kplan.cli.app import main

main()
