"""django-debug-toolbar panel (``pip install cachelayer[debug]``).

Add ``"cachelayer.contrib.debug_toolbar.panels.CachelayerPanel"`` to
``DEBUG_TOOLBAR_PANELS``; its template ships with the ``cachelayer`` app.
"""
