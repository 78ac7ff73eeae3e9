"""``python -m tttkit`` runs the command line (handy under ``torchrun -m tttkit …``)."""

from tttkit.cli import main

main()
