"""c10kplan: can this host hold N concurrent TCP connections, and if not, what must change?"""

__version__ = "0.1.0"
