"""Making talk training corpora: the on-disk format (``layout``), TTS and package-shipped recordings (``tts``,
``recordings``, ``texts``), phone timings (``phones``), motion synthesis from phones and prosody (``visemes``,
``prosody``, ``styles``, ``motion_synth``), the builder (``build``), tracked video as a corpus source
(``tracks``) and checks of speech motion (``speech_checks``).

The model (``splattalk.talk``) never imports this package; training reads corpora through ``layout``.
"""
