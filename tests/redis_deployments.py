"""Re-exports the public names of the old `tests/redis_deployments.py`, now split into
`tests.support.{resp,deployment,sentinel,cluster,tls,acl}`.

Transitional: the old import path, kept so that branches written before the move to
`tests.support` still import; import from `tests.support` instead. Delete once no module uses it.
"""

from tests.support.acl import DENIED_COMMANDS as DENIED_COMMANDS
from tests.support.acl import AclUser as AclUser
from tests.support.acl import create_acl_user as create_acl_user
from tests.support.cluster import CLUSTER_SLOTS as CLUSTER_SLOTS
from tests.support.cluster import ClusterDeployment as ClusterDeployment
from tests.support.deployment import DeploymentError as DeploymentError
from tests.support.resp import Access as Access
from tests.support.resp import AccessedServer as AccessedServer
from tests.support.resp import ReplyError as ReplyError
from tests.support.resp import call as call
from tests.support.resp import call_server as call_server
from tests.support.resp import command_calls as command_calls
from tests.support.resp import stat as stat
from tests.support.sentinel import SentinelDeployment as SentinelDeployment
from tests.support.tls import TlsRedisServer as TlsRedisServer
from tests.support.tls import TlsUnsupported as TlsUnsupported
from tests.support.tls import make_certificates as make_certificates
from tests.support.tls import redis_supports_tls as redis_supports_tls
