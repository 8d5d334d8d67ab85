"""The kernel client of a render: ready as soon as the kernel has answered.

jupyter_client's ``wait_for_ready`` ends by reading IOPub until 0.2 s pass without a message
(to drop the status messages of its ``kernel_info`` requests): 0.2 s a report in which the
render waits and no core works for it, 20 s of a batch of 200 reports on two workers. A
render's client (nbclient) reads only the IOPub messages of its own requests, so there is
nothing to drop. :class:`ReadyClient` is ready once the kernel's reply to ``kernel_info`` has
come on the shell channel and its idle status for that request on IOPub, which is also how
jupyter_client knows IOPub is connected (when it is not yet, the request is sent again, as
jupyter_client does).
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient

__all__ = ["ReadyClient"]

#: how long the idle status of a kernel_info request may take on IOPub before it is sent again
#: (jupyter_client's wait for IOPub's first message)
IOPUB_WAIT = 0.2


class ReadyClient(AsyncKernelClient):
    """An asynchronous kernel client whose ``wait_for_ready`` returns when the kernel has
    answered ``kernel_info`` on the shell channel and gone idle for it on IOPub."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """Wait until the kernel answers; RuntimeError if it dies first or ``timeout`` seconds pass."""
        from jupyter_client.manager import KernelManager

        if not isinstance(self.parent, KernelManager):
            return await super().wait_for_ready(timeout=timeout)    # heartbeats first: not a render's
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            request = self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply" and await self._idle_for(request):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    async def _idle_for(self, request: str) -> bool:
        """Whether IOPub brings the kernel's idle status for ``request`` within :data:`IOPUB_WAIT`."""
        end = time.monotonic() + IOPUB_WAIT
        while (left := end - time.monotonic()) > 0:
            try:
                message = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (message["msg_type"] == "status" and message["parent_header"].get("msg_id") == request
                    and message["content"].get("execution_state") == "idle"):
                return True
        return False
