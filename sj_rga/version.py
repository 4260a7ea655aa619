"""The sj-rga release, set here once: ``setup.cfg`` reads it (``version = attr: sj_rga.version.__version__``),
the package face re-exports it as ``sj_rga.__version__``, and modules inside the package import it from here
(never from the package face, which is still importing while they load)."""

__version__ = "0.1.0"
