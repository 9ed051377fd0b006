"""`python -m bot` starts the Telegram bot (the same as `articlebot run`); given arguments, it
is `articlebot` with those arguments."""

import sys

from bot.cli import main

if __name__ == "__main__":
    main(sys.argv[1:] or ["run"])
