"""Re-exports `tests.support.redis_server`.

Transitional: the old import path, kept so that branches written before the move to
`tests.support` still import; import from `tests.support` instead. Delete once no module uses it.
"""

from tests.support.redis_server import INSTALL_HINT as INSTALL_HINT
from tests.support.redis_server import RedisServer as RedisServer
from tests.support.redis_server import RedisServerMissing as RedisServerMissing
from tests.support.redis_server import free_port as free_port
