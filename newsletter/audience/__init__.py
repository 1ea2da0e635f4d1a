"""Who gets a letter: addresses, subscriber spreadsheets and the rules that choose recipients."""
