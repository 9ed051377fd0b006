"""The bot's front ends: Telegram (`bot.app`) and the terminal (`bot.cli`)."""
