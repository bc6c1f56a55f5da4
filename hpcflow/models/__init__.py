"""Machine-learned models: normalizing flows (``flows``)."""
