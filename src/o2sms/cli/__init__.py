"""The ``o2sms`` command."""
