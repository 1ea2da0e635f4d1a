"""The providers: outbox, SMTP or Amazon SES behind one small interface (`base.py`); the
send engine (`newsletter.sending.engine.provider_factory`) opens the one named."""
