"""Evaluation loops over released models: ASR (``asr``), speaker verification (``speaker``), multi-talker
(``multitalker``) and external peer systems (``peers``)."""
