"""`python -m api.cli …` runs ft-cli (the tests and the projection worker start it this way)."""

from api.cli.app import main

main()
