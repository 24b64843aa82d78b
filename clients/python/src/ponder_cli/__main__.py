"""`python -m ponder_cli`: the same as the `ponder` command."""

from ponder_cli.app import main


main()
