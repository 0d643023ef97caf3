"""What tests/local/fake_slow_handlers.py's handlers wait for and record, kept apart from them:
a timeout drops the handlers' module from sys.modules and the next invocation imports a new copy,
and every copy must see the one event a test sets."""

import threading

# Set by a test to let a handler blocked in `wait()` (a C call) or napping go on.
RELEASE = threading.Event()
# What the handlers got as far as, in order.
REACHED: list[str] = []
