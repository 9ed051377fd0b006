"""The bot's front ends: Telegram (`bot.app`), the terminal chat (`bot.terminal`) and the
command line (`bot.cli`), sharing their decisions (`bot.conversation`) and rendering."""
