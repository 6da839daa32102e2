"""The web export: a static page that runs an exported model in the browser with
LiteRT.js (``page.py``), the runtime it bundles from npm (``runtime.py``), a gallery of
several (``gallery.py``) and ``zoo serve`` (``serve.py``)."""
