"""GridAid's web application and domain services."""

import os

# Piccolo finds its engine through this module path when a table class is first defined; set it
# before any slice's tables are imported, whichever module is imported first.
os.environ.setdefault("PICCOLO_CONF", "backend.piccolo_conf")
