"""The connector daemon: settings, workers between the store and the SMPP client, the HTTP
API, webhooks and metrics. ``o2sms serve`` runs it; sandbox mode adds the simulator."""
