"""Real servers for the tests and benchmarks: a Mosquitto broker and a Ceph RGW (S3).

Each runs on free 127.0.0.1 ports, in a folder of its own, as foreground children owned
by the process that started them (stopped by their pids only). See docs/real-services.md.
"""

from services.mosquitto import Mosquitto
from services.ports import ServiceError, free_port
from services.rgw import Rgw

__all__ = ["Mosquitto", "Rgw", "ServiceError", "free_port"]
