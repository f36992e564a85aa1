"""One module per ``egotask`` subcommand; each defines ``add_parser(subparsers)``."""
