"""One module per `intforge` command, each with `add_parser(subparsers)`; the parser's
`command` default is the function that runs it and returns the exit code."""
