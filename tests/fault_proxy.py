"""Re-exports `tests.support.fault_proxy`.

Transitional: the old import path, kept so that branches written before the move to
`tests.support` still import; import from `tests.support` instead. Delete once no module uses it.
"""

from tests.support.fault_proxy import Fault as Fault
from tests.support.fault_proxy import FaultProxy as FaultProxy
from tests.support.fault_proxy import Matcher as Matcher
from tests.support.fault_proxy import Mode as Mode
from tests.support.fault_proxy import command_named as command_named
from tests.support.fault_proxy import script as script
from tests.support.fault_proxy import wait_for as wait_for
