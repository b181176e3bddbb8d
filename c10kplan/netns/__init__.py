"""Named network namespaces joined by veth pairs and a bridge: a server host and K client hosts
on one machine (`topology.Topology`), with a reaper that removes them even after SIGKILL of the
owner, and helpers to run commands and read nstat counters inside a namespace (`ip`)."""
