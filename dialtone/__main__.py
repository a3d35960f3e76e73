"""``python -m dialtone``: the console script (e.g. for ``python -X importtime -m dialtone``)."""

from dialtone.cli import main

main()
