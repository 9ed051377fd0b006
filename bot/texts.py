"""Everything the bot says, in English and German, in one place.

Texts are Telegram HTML that is also readable as plain text: only the help texts use tags,
and no text holds a bare "<" or "&". Values filled in with `say(..., **values)` are inserted
as given; whoever renders HTML escapes them first (see `bot.render`).
"""

from __future__ import annotations

ENGLISH, GERMAN = "en", "de"

_TEXTS: dict[str, dict[str, str]] = {
    "help_private": {
        ENGLISH: (
            "I answer questions about news articles you give me, quoting their sentences "
            "word for word.\n\n"
            "<b>Add an article:</b> send its link, forward a channel's post to me, paste "
            "the article's text (a long text that doesn't end with a question is added right "
            "away, not answered), or send a .txt, .html or .md file; /add followed by a link "
            "or text works too.\n"
            "<b>Ask:</b> just write your question, e.g. <i>Who is mediating with Iran?</i> "
            "Then ask on briefly, e.g. <i>What did the Kremlin say?</i>, and I read it "
            "together with the question before; replying to one of my answers does the "
            "same.\n\n"
            "/list shows the articles, /remove 2 removes article #2, /forget empties "
            "this chat's library. /follow with a news site's link adds its new articles as "
            "they appear.\n\n"
            "<b>In any other chat:</b> type @{bot} and a question to pick a quote from the "
            "articles you added here and post it there."
        ),
        GERMAN: (
            "Ich beantworte Fragen zu Artikeln, die du mir gibst, mit wörtlichen Zitaten.\n\n"
            "<b>Artikel hinzufügen:</b> schick den Link, leite mir den Beitrag eines Kanals "
            "weiter, füge den Text des Artikels ein (ein langer Text, der nicht mit einer "
            "Frage endet, wird gleich hinzugefügt, nicht beantwortet) oder schick eine .txt-, "
            ".html- oder .md-Datei; /add mit einem Link oder Text geht auch.\n"
            "<b>Fragen:</b> schreib einfach deine Frage, z. B. <i>Wer vermittelt mit dem "
            "Iran?</i> Dann frag kurz weiter, z. B. <i>Was sagte der Kreml?</i>, und ich lese "
            "das zusammen mit der Frage davor; eine Antwort auf eine meiner Antworten ebenso."
            "\n\n"
            "/list zeigt die Artikel, /remove 2 entfernt Artikel #2, /forget leert die "
            "Bibliothek dieses Chats. /follow mit dem Link einer Nachrichtenseite holt ihre "
            "neuen Artikel, sobald sie erscheinen.\n\n"
            "<b>In jedem anderen Chat:</b> tippe @{bot} und eine Frage, um ein Zitat aus den "
            "Artikeln, die du hier hinzugefügt hast, dort zu posten."
        ),
    },
    "help_group": {
        ENGLISH: (
            "I answer questions about the news articles of this group, quoting their "
            "sentences word for word. I don't act on your conversation: I answer commands, "
            "messages that mention me and replies to my messages (and, with /collect on, I "
            "add the links you post).\n\n"
            "<b>Add an article:</b> /add followed by a link or the article's text, or reply "
            "/add to a message that holds one (a forwarded post too), or send a file with the "
            "caption /add.\n"
            "<b>Ask:</b> /ask Who is mediating with Iran?\n"
            "<b>Follow up:</b> reply to my answer, e.g. <i>What did the Kremlin say?</i>\n\n"
            "/list shows the articles. /remove 2 and /forget are for admins and for "
            "whoever added the articles. Admins can /follow a news site's feed, and /collect "
            "on makes me add every link posted here."
        ),
        GERMAN: (
            "Ich beantworte Fragen zu den Artikeln dieser Gruppe mit wörtlichen Zitaten. "
            "Auf eure Unterhaltung reagiere ich nicht: Ich antworte auf Befehle, Nachrichten, "
            "die mich erwähnen, und Antworten auf meine Nachrichten (und mit /collect on "
            "nehme ich eure Links auf).\n\n"
            "<b>Artikel hinzufügen:</b> /add mit einem Link oder dem Text des Artikels, oder "
            "/add als Antwort auf eine Nachricht mit Link oder Text (auch einen "
            "weitergeleiteten Beitrag), oder eine Datei mit der Beschriftung /add.\n"
            "<b>Fragen:</b> /ask Wer vermittelt mit dem Iran?\n"
            "<b>Nachfragen:</b> antworte auf meine Antwort, z. B. <i>Was sagte der Kreml?</i>\n\n"
            "/list zeigt die Artikel. /remove 2 und /forget dürfen Admins und wer die "
            "Artikel hinzugefügt hat. Admins können mit /follow dem Feed einer "
            "Nachrichtenseite folgen, und mit /collect on nehme ich jeden hier geposteten Link "
            "auf."
        ),
    },
    "help_terminal": {
        ENGLISH: (
            "Ask questions about the articles of this library; answers quote them word for "
            "word. A question right after an answer is read together with it.\n"
            "  /add LINK, FILE or TEXT\n"
            "                      add an article (a line that is only a link adds it too,\n"
            "                      and so does a pasted text that reads like an article)\n"
            "  /ask QUESTION       ask (any other line is a question as well)\n"
            "  /more               the next quotes of the last answer\n"
            "  /context            the sentences around the first quote shown\n"
            "  /list               the articles, with their short ids\n"
            "  /remove ID          remove an article\n"
            "  /forget             empty the library (asks first)\n"
            "  /quit               leave (or Ctrl-D)"
        ),
    },
    "terminal_loading": {ENGLISH: "Loading the language model…"},
    "command_start": {ENGLISH: "What I do and how to use me", GERMAN: "Was ich kann"},
    "command_help": {ENGLISH: "How to add articles and ask", GERMAN: "Hilfe"},
    "command_add": {
        ENGLISH: "Add an article: a link or its text",
        GERMAN: "Artikel hinzufügen: Link oder Text",
    },
    "command_ask": {ENGLISH: "Ask about the articles", GERMAN: "Eine Frage stellen"},
    "command_list": {ENGLISH: "List the articles", GERMAN: "Artikel auflisten"},
    "command_remove": {ENGLISH: "Remove an article by its id", GERMAN: "Artikel entfernen"},
    "command_forget": {ENGLISH: "Empty this chat's library", GERMAN: "Bibliothek leeren"},
    "added": {
        ENGLISH: "Added #{number}: {title} ({article_language}, {sentences} sentences).",
        GERMAN: "Hinzugefügt als #{number}: {title} ({article_language}, {sentences} Sätze).",
    },
    "added_pasted": {
        ENGLISH: "It read like an article, so I added it instead of answering it; /remove "
        "{number} takes it out again.",
        GERMAN: "Es las sich wie ein Artikel, deshalb habe ich es hinzugefügt statt es zu "
        "beantworten; /remove {number} nimmt es wieder heraus.",
    },
    "forward_without_text": {
        ENGLISH: "That forwarded message has no text to add (a poll, a sticker or a photo "
        "without caption). Forward a post with text or a link.",
        GERMAN: "Diese weitergeleitete Nachricht hat keinen Text zum Hinzufügen (eine Umfrage, "
        "ein Sticker oder ein Foto ohne Beschriftung). Leite einen Beitrag mit Text oder Link "
        "weiter.",
    },
    "removed": {ENGLISH: "Removed #{number}: {title}.", GERMAN: "Entfernt: #{number} {title}."},
    "sentences": {ENGLISH: "{count} sentences", GERMAN: "{count} Sätze"},
    "language_de": {ENGLISH: "German", GERMAN: "Deutsch"},
    "language_en": {ENGLISH: "English", GERMAN: "Englisch"},
    "no_answer": {
        ENGLISH: "The articles in this library don't answer that.",
        GERMAN: "Die Artikel in dieser Bibliothek beantworten das nicht.",
    },
    "empty_library": {
        ENGLISH: (
            "This chat's library is empty. Add an article first: /add followed by a link or "
            "the article's text (in a private chat, just send the link or a file)."
        ),
        GERMAN: (
            "Die Bibliothek dieses Chats ist leer. Füge zuerst einen Artikel hinzu: /add mit "
            "einem Link oder dem Text (im privaten Chat genügt der Link oder eine Datei)."
        ),
    },
    "empty_library_plain": {
        ENGLISH: (
            "The library is empty. Add an article first: /add followed by a link or the "
            "article's text in the chat, or `articlebot add URL|FILE|-` from the shell."
        ),
    },
    "source_text": {ENGLISH: "sent as text", GERMAN: "als Text geschickt"},
    "source_file": {ENGLISH: "sent as a file", GERMAN: "als Datei geschickt"},
    "source_forward": {ENGLISH: "forwarded", GERMAN: "weitergeleitet"},
    "follow_up": {
        ENGLISH: "Read together with “{question}”:",
        GERMAN: "Zusammen mit „{question}“ gelesen:",
    },
    "no_more": {ENGLISH: "No more quotes.", GERMAN: "Keine weiteren Zitate."},
    "button_more": {ENGLISH: "More", GERMAN: "Mehr"},
    "button_context": {ENGLISH: "Context", GERMAN: "Kontext"},
    "too_old": {
        ENGLISH: "This answer is too old — please ask again.",
        GERMAN: "Diese Antwort ist zu alt — bitte frag noch einmal.",
    },
    "forget_confirm": {
        ENGLISH: "Forget every article in this chat ({count})? This cannot be undone.",
        GERMAN: "Alle Artikel dieses Chats vergessen ({count})? Das lässt sich nicht "
        "rückgängig machen.",
    },
    "button_forget": {ENGLISH: "Forget them", GERMAN: "Vergessen"},
    "button_cancel": {ENGLISH: "Cancel", GERMAN: "Abbrechen"},
    "forgot": {
        ENGLISH: "Done: the library is empty now ({count} forgotten).",
        GERMAN: "Erledigt: Die Bibliothek ist jetzt leer ({count} vergessen).",
    },
    "forget_cancelled": {ENGLISH: "Nothing was forgotten.", GERMAN: "Nichts wurde vergessen."},
    "confirm_terminal": {ENGLISH: "Type yes to confirm: "},
    "not_allowed_remove": {
        ENGLISH: "Only the chat's admins and whoever added an article can remove it.",
        GERMAN: "Nur Admins und wer einen Artikel hinzugefügt hat, können ihn entfernen.",
    },
    "not_allowed_forget": {
        ENGLISH: "Only the chat's admins can empty its library.",
        GERMAN: "Nur Admins können die Bibliothek leeren.",
    },
    "usage_add": {
        ENGLISH: (
            "Send /add followed by a link or the article's text, or reply /add to a message "
            "that holds one."
        ),
        GERMAN: (
            "Schick /add mit einem Link oder dem Text des Artikels, oder antworte mit /add auf "
            "eine Nachricht, die einen enthält."
        ),
    },
    "usage_ask": {
        ENGLISH: "Write your question after /ask, e.g. /ask Who is mediating with Iran?",
        GERMAN: "Schreib deine Frage nach /ask, z. B. /ask Wer vermittelt mit dem Iran?",
    },
    "usage_remove": {
        ENGLISH: "Which article? Write its id from /list after /remove, e.g. /remove 2.",
        GERMAN: "Welcher Artikel? Schreib seine Nummer aus /list nach /remove, z. B. /remove 2.",
    },
    "nothing_to_show": {
        ENGLISH: "Ask a question first.",
        GERMAN: "Stell zuerst eine Frage.",
    },
    "unknown_command": {
        ENGLISH: "I don't know that command; /help lists what I can do.",
        GERMAN: "Diesen Befehl kenne ich nicht; /help zeigt, was ich kann.",
    },
    "unsupported": {
        ENGLISH: "I read questions, links and .txt, .html or .md files; /help says more.",
        GERMAN: "Ich lese Fragen, Links und .txt-, .html- oder .md-Dateien; mehr unter /help.",
    },
    "inline_type": {
        ENGLISH: "Type a question",
        GERMAN: "Tippe eine Frage",
    },
    "inline_type_text": {
        ENGLISH: "Type @{bot} and a question; I answer from the articles in your private chat "
        "with me.",
        GERMAN: "Tippe @{bot} und eine Frage; ich antworte aus den Artikeln in deinem privaten "
        "Chat mit mir.",
    },
    "inline_empty": {
        ENGLISH: "Your library is empty",
        GERMAN: "Deine Bibliothek ist leer",
    },
    "inline_empty_text": {
        ENGLISH: "Inline answers quote the articles of your private chat with @{bot}; add "
        "some there first: send a link, forward a post or paste a text.",
        GERMAN: "Inline-Antworten zitieren die Artikel deines privaten Chats mit @{bot}; füge "
        "dort zuerst welche hinzu: schick einen Link, leite einen Beitrag weiter oder füge "
        "einen Text ein.",
    },
    "inline_too_long": {
        ENGLISH: "That question is too long",
        GERMAN: "Diese Frage ist zu lang",
    },
    "inline_too_long_text": {
        ENGLISH: "Please ask in at most {limit} characters (this one has {length}).",
        GERMAN: "Bitte frag in höchstens {limit} Zeichen (diese hat {length}).",
    },
    "inline_no_answer": {
        ENGLISH: "No answer in your articles",
        GERMAN: "Keine Antwort in deinen Artikeln",
    },
    "apology": {
        ENGLISH: "Sorry, something went wrong with that. Please try again.",
        GERMAN: "Entschuldige, dabei ist etwas schiefgegangen. Bitte versuch es noch einmal.",
    },
    # Feeds
    "command_follow": {
        ENGLISH: "Follow a news site or feed: its new articles come in",
        GERMAN: "Einer Nachrichtenseite oder einem Feed folgen",
    },
    "command_feeds": {ENGLISH: "The feeds this chat follows", GERMAN: "Gefolgte Feeds"},
    "command_unfollow": {ENGLISH: "Stop following a feed", GERMAN: "Einem Feed nicht mehr folgen"},
    "usage_follow": {
        ENGLISH: (
            "Send /follow with the link of a news site or its RSS or Atom feed, e.g. /follow "
            "https://www.tagesschau.de. New articles then come into this chat's library by "
            "themselves."
        ),
        GERMAN: (
            "Schick /follow mit dem Link einer Nachrichtenseite oder ihres RSS- oder Atom-Feeds, "
            "z. B. /follow https://www.tagesschau.de. Neue Artikel kommen dann von selbst in die "
            "Bibliothek dieses Chats."
        ),
    },
    "usage_unfollow": {
        ENGLISH: "Which feed? Write its id from /feeds after /unfollow, e.g. /unfollow 2.",
        GERMAN: "Welcher Feed? Schreib seine Nummer aus /feeds nach /unfollow, z. B. /unfollow 2.",
    },
    "following": {
        ENGLISH: "Following {title} (feed #{number}). I look for new articles every {minutes} "
        "minutes.",
        GERMAN: "Ich folge jetzt {title} (Feed #{number}) und schaue alle {minutes} Minuten "
        "nach neuen Artikeln.",
    },
    "feed_added": {
        ENGLISH: "{count} new articles from {title}:",
        GERMAN: "{count} neue Artikel von {title}:",
    },
    "feed_added_one": {
        ENGLISH: "1 new article from {title}:",
        GERMAN: "1 neuer Artikel von {title}:",
    },
    "feed_skipped": {
        ENGLISH: "({count} more items were skipped: not articles, or over the limit of {limit} "
        "per check.)",
        GERMAN: "({count} weitere Einträge übersprungen: keine Artikel oder mehr als {limit} pro "
        "Abruf.)",
    },
    "feed_failing": {
        ENGLISH: "The feed {title} (#{number}) keeps failing: {error} I keep trying; /feeds "
        "shows how it goes.",
        GERMAN: "Der Feed {title} (#{number}) schlägt immer wieder fehl: {error} Ich versuche "
        "es weiter; /feeds zeigt, wie es läuft.",
    },
    "feed_paused": {
        ENGLISH: "I stopped checking the feed {title} (#{number}) after {failures} failures in "
        "a row: {error} /follow {url} starts it again.",
        GERMAN: "Ich habe den Feed {title} (#{number}) nach {failures} Fehlschlägen in Folge "
        "angehalten: {error} /follow {url} startet ihn wieder.",
    },
    "no_feeds": {
        ENGLISH: "This chat follows no feeds. /follow with a news site's link adds its new "
        "articles as they appear.",
        GERMAN: "Dieser Chat folgt keinen Feeds. /follow mit dem Link einer Nachrichtenseite "
        "holt ihre neuen Artikel, sobald sie erscheinen.",
    },
    "feeds_title": {ENGLISH: "Feeds of this chat:", GERMAN: "Feeds dieses Chats:"},
    "feed_ok": {ENGLISH: "last checked {when}", GERMAN: "zuletzt abgerufen {when}"},
    "feed_never": {ENGLISH: "not checked yet", GERMAN: "noch nicht abgerufen"},
    "feed_error": {ENGLISH: "failing: {error}", GERMAN: "Fehler: {error}"},
    "feed_paused_state": {
        ENGLISH: "paused; /follow it again to resume",
        GERMAN: "angehalten; /follow startet ihn wieder",
    },
    "unfollowed": {
        ENGLISH: "Stopped following {title} (feed #{number}). Its articles stay in the library.",
        GERMAN: "Ich folge {title} (Feed #{number}) nicht mehr. Seine Artikel bleiben in der "
        "Bibliothek.",
    },
    "not_allowed_follow": {
        ENGLISH: "In groups, only admins can follow feeds.",
        GERMAN: "In Gruppen können nur Admins Feeds folgen.",
    },
    "not_allowed_unfollow": {
        ENGLISH: "Only the chat's admins and whoever followed a feed can end it.",
        GERMAN: "Nur Admins und wer einem Feed folgt, können ihn beenden.",
    },
    # Collecting links in groups
    "command_collect": {
        ENGLISH: "Add every link posted here (on/off, admins)",
        GERMAN: "Jeden geposteten Link aufnehmen (on/off)",
    },
    "usage_collect": {
        ENGLISH: "Collecting links is {state} here. /collect on adds the article of every link "
        "posted in this group, confirmed with a 👍 on the message (🤷: not an article); "
        "/collect off stops it.",
        GERMAN: "Das Sammeln von Links ist hier {state}. /collect on nimmt den Artikel jedes "
        "Links auf, der in dieser Gruppe gepostet wird, bestätigt mit 👍 an der Nachricht (🤷: "
        "kein Artikel); /collect off beendet es.",
    },
    "collect_state_on": {ENGLISH: "on", GERMAN: "an"},
    "collect_state_off": {ENGLISH: "off", GERMAN: "aus"},
    "collect_private": {
        ENGLISH: "/collect is for groups: here, every link you send is added anyway.",
        GERMAN: "/collect ist für Gruppen: Hier wird jeder Link, den du schickst, ohnehin "
        "aufgenommen.",
    },
    "not_allowed_collect": {
        ENGLISH: "Only the group's admins can turn collecting links on or off.",
        GERMAN: "Nur Admins der Gruppe können das Sammeln von Links an- oder ausschalten.",
    },
    "collect_on": {
        ENGLISH: "From now on I add the article of every link posted here and confirm it with "
        "a 👍 on the message (🤷 when the link is not an article). /collect off stops it.",
        GERMAN: "Ab jetzt nehme ich den Artikel jedes hier geposteten Links auf und bestätige "
        "das mit 👍 an der Nachricht (🤷, wenn der Link kein Artikel ist). /collect off "
        "beendet es.",
    },
    "collect_off": {
        ENGLISH: "I no longer add links posted here; /add still does.",
        GERMAN: "Ich nehme hier gepostete Links nicht mehr auf; /add geht weiterhin.",
    },
    "collect_cannot_read": {
        ENGLISH: (
            "I can't collect links here yet: Telegram only shows me commands and replies to "
            "me in this group (privacy mode), so I never see the links you post. Either make "
            "me an admin of the group, or ask my owner to send /setprivacy to @BotFather, "
            "choose me and pick Disable (then remove me from the group and add me again). "
            "Then send /collect on again."
        ),
        GERMAN: (
            "Links sammeln kann ich hier noch nicht: Telegram zeigt mir in dieser Gruppe nur "
            "Befehle und Antworten an mich (Privatsphäre-Modus), die geposteten Links sehe ich "
            "also nie. Mach mich entweder zum Admin der Gruppe, oder mein Betreiber schickt "
            "@BotFather /setprivacy, wählt mich und dann Disable (danach mich aus der Gruppe "
            "entfernen und wieder hinzufügen). Dann noch einmal /collect on."
        ),
    },
}


def language_of(language_code: str | None) -> str:
    """The language to talk in for a user's Telegram language code: German or English."""
    return GERMAN if (language_code or "").lower().startswith(GERMAN) else ENGLISH


def say(key: str, language: str = ENGLISH, **values: object) -> str:
    """The text `key` in `language` (English where there is no translation), filled in."""
    versions = _TEXTS[key]
    return versions.get(language, versions[ENGLISH]).format(**values)


def language_name(code: str, language: str = ENGLISH) -> str:
    """A language's name ("German") for a code ("de"); unknown codes stay as they are."""
    key = f"language_{code}"
    return say(key, language) if key in _TEXTS else code


def all_texts() -> list[str]:
    """Every text in every language, unfilled (for checking that they are valid HTML)."""
    return [text for versions in _TEXTS.values() for text in versions.values()]
