"""Result tables rendered from Jinja templates (``templates/``), from lmms-eval output folders."""
