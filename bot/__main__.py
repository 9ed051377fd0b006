"""`python -m bot` starts the Telegram bot (the same as `articlebot run`)."""

from bot.cli import main

if __name__ == "__main__":
    main(["run"])
