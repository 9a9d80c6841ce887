"""carebound.notify: tell reviewers when a hold waits for them, nears its deadline or is
escalated to them, over a signed webhook (Slack/Teams-compatible JSON) or e-mail (SMTP).

Configured in the connectors file's ``[notify]`` table
(:class:`carebound.tools.connectors.config.NotifyConfig`); run by ``carebound worker``. Every
message carries ids, names, a deadline and a link: never PHI.
"""

from carebound.notify._messages import Notice, NoticeKind, signature, target_id, verify_signature
from carebound.notify._notifier import Notifier, NotifyReport

__all__ = [
    "Notice",
    "NoticeKind",
    "Notifier",
    "NotifyReport",
    "signature",
    "target_id",
    "verify_signature",
]
