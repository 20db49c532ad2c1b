"""OpenRosa: ODK Collect, KoboCollect and Enketo collect for gridcollect (SPEC.md
section 11). ``xlsform`` turns an effective standard into an XLSForm, ``xforms`` into
an XForm (pyxform), ``instance`` reads a filled-in form back, ``views`` serves them."""
from .instance import MAX_INSTANCE_BYTES  # noqa: F401
from .views import blp  # noqa: F401
