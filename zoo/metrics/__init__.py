"""Metrics: WER/CER with bootstrap CIs (``wer``), speaker verification (``speaker``), multi-talker (``multitalker``)."""
