"""A tiny hook for a plain training loop: publish a checkpoint every N steps."""


class ProbestreamCallback:
    """``cb = ProbestreamCallback(publisher, every=50, layers=["h1", "h2"], logits="logits",
    classifier_weight="classifier.weight")``, then ``cb.step(model, step, {"loss": loss})`` after
    each optimiser step: every ``every`` steps (and at step 0 when ``at_start``) it publishes the
    model as a checkpoint with the metrics. Keyword arguments go to Publisher.checkpoint."""

    def __init__(self, publisher, every=100, at_start=False, **checkpoint_kwargs):
        if every < 1:
            raise ValueError("every must be at least 1")
        self.publisher = publisher
        self.every = every
        self.at_start = at_start
        self.checkpoint_kwargs = checkpoint_kwargs
        self.published = []  # steps published

    def step(self, model, step, metrics=None):
        """Publishes a checkpoint if ``step`` is due; returns True when it did."""
        if step % self.every != 0 or (step == 0 and not self.at_start):
            return False
        self.publisher.checkpoint(step, model, metrics=metrics, **self.checkpoint_kwargs)
        self.published.append(step)
        return True
