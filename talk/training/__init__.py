"""Training of the talk model: corpus windows (``dataset``), the stages (``train_vqvae``, ``train_frontend``,
``train_ar``), the mouth read-out's fitting (``readout``) and the default model's recipe (``default_model``).

Each stage runs as ``python -m splattalk.talk.training.<module>``. The model (``splattalk.talk``) never imports
this package.
"""
