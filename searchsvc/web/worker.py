"""The gunicorn worker of `searchsvc serve`: a pool of threads per process, and an event loop
that reads each request head before a thread is given to it.

gunicorn's own gthread worker hands a connection to a pool thread at its first byte; the thread
then waits in the HTTP parser, so a few dozen clients trickling their headers hold every
thread (slowloris). Here the worker's event loop reads the head without blocking, within a
total deadline (like nginx's client_header_timeout) and a size cap, and only a complete head
goes to the pool, for new and kept-alive connections alike.

A thread never waits for a client to read a page or an answer: it writes what the socket takes
at once, and the event loop sends the rest (`ProgressSocket.held`) as the client reads. A
connection's next request (a pipelined one too) goes to a thread only once the client has
received the whole previous response (the kernel holds none of it unacknowledged). A client
that pipelined ten requests for a 1.5 MB page and read nothing held a thread per response until
the send timeout, so 24 such connections held every thread of both workers for a minute; now
each costs one response, rendered once. The held bytes are bounded per worker (HELD_BYTES): past
it, the connection that has read nothing for longest is reset. Only a stream (an export, at most
SEARCHSVC_MAX_EXPORTS at once) past HOLD_STREAM bytes waits in its thread. Whoever waits, a
client that reads nothing for the send timeout is cut off (a reset, so it sees a broken transfer).

The app takes no request bodies (every route is a GET). A request that declares one
(Content-Length above 0, or Transfer-Encoding) is answered with "Connection: close" and the
connection closed: gunicorn would otherwise drain the unread body in the pool thread (up to 5 s,
checked only between 1 KiB reads, so a body trickled a byte a second held it longer). The close
lingers in the event loop, as every close here does.

Subclasses gunicorn's ThreadWorker and TConn: written against gunicorn 27.0.1, which
pyproject.toml pins. Plain HTTP/1.x only; TLS ends in the reverse proxy.
"""

from __future__ import annotations

import errno
import fcntl
import selectors
import socket
import struct
import sys
import termios
import time
from concurrent import futures
from contextlib import suppress
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers.gthread import TConn, ThreadWorker

HEAD_END = b"\r\n\r\n"
MAX_HEAD = 64 * 1024  # bytes of request line and headers; nginx allows 32 KiB, Apache about 800
LINGER = 2.0  # seconds, and bytes, of a closed connection's input drained (as gunicorn's close_graceful)
LINGER_BYTES = 64 * 1024
DRAIN_POLL = 0.05  # seconds between looks at whether a waiting request's connection has caught up
HELD_BYTES = 64 * 1024 * 1024  # per worker: responses held for clients that have not read them yet
HOLD_STREAM = 256 * 1024  # bytes of a streamed response held before its thread waits for the client
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def unacknowledged(sock: socket.socket) -> int:
    """Bytes written to `sock` that its client has not acknowledged (0 where the system cannot tell)."""
    if _OUTQ is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0"))[0]
    except OSError:
        return 0


_OUTQ = getattr(termios, "TIOCOUTQ", None) if sys.platform == "linux" else None  # Linux's SIOCOUTQ


def declares_body(req: Any) -> bool:
    """Whether the request says a body follows (gunicorn has already refused malformed lengths)."""
    return any(name == "TRANSFER-ENCODING" or (name == "CONTENT-LENGTH" and int(value) > 0)
               for name, value in req.headers)


class WholeResponse(wsgi.Response):
    """A response whose head and body go to the socket in one write when the body is one piece
    that fits (every JSON answer and page): a server killed mid-response then leaves a client, or
    the load balancer before it, with nothing (which HAProxy retries on another replica) or all
    of it, never a head without its body (which it cannot retry)."""

    def write(self, arg: bytes) -> None:
        whole = (not self.headers_sent and isinstance(arg, bytes) and arg and not self.chunked
                 and not self._omits_body and self.response_length == len(arg))
        if not whole:
            super().write(arg)
            return
        head = self.default_headers()
        head.extend(f"{k}: {v}\r\n" for k, v in self.headers)
        self.headers_sent = True  # as send_headers() would, and gunicorn's accounting
        self.sent += len(arg)
        self.sock.hold(util.to_bytestring("".join(head) + "\r\n", "latin-1") + arg)


class ProgressSocket(socket.socket):
    """A client socket that a pool thread writes without waiting for the client to read.

    `hold()` sends what the socket takes at once and keeps the rest in `held`, which the event
    loop sends on; `sendall()` (a stream's pieces, gunicorn's own writes) does the same up to
    HOLD_STREAM bytes held, and past it waits, with the socket's timeout bounding each wait for
    progress, not the whole sendall(): Python's counts it for all of the data, which cut a slow
    but steady client off in the middle of a large export (nginx's send_timeout is per write too).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.held = bytearray()

    def hold(self, data: bytes) -> None:
        """Send what the socket takes now; keep all of the rest for the event loop."""
        view = memoryview(data).cast("B")
        if not self.held:
            view = view[self._send_now(view):]
        self.held += view

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        if not self.held:
            view = view[self._send_now(view):]
        if len(self.held) + len(view) <= HOLD_STREAM:
            self.held += view
            return
        self._send_waiting(self.held, flags)
        self.held.clear()
        self._send_waiting(view, flags)

    def _send_waiting(self, data: Any, flags: int) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view, flags):]

    def _send_now(self, view: memoryview) -> int:
        """Bytes of `view` the socket takes without waiting (its timeout is kept)."""
        timeout = self.gettimeout()
        self.settimeout(0)
        try:
            return self.send(view)
        except (BlockingIOError, InterruptedError):
            return 0
        finally:
            self.settimeout(timeout)


class Connection(TConn):
    """A client connection: the head read so far, and how it is to be closed."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any, worker: HeadReadingWorker):
        super().__init__(cfg, sock, client, server)
        self.worker = worker
        self.head = bytearray()
        self.head_ready = False
        self.reset = False  # set after a send timeout
        self.path = ""  # of the request being answered, for the log
        self.answered = False  # a response was written: the next request waits until it is received
        self.keep_alive = False  # what the thread said of the connection, once its held bytes are sent

    def close(self, graceful: bool = False) -> None:
        if self.reset:
            # An abortive close: the client's next read fails, and the kernel does not keep
            # retrying the unsent rest of the response to a client that stopped reading.
            with suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            util.close(self.sock)
        elif graceful:
            self.worker.linger(self.sock)
        else:
            util.close(self.sock)


class HeadReadingWorker(ThreadWorker):
    """gthread with request heads read in the event loop, and a send timeout (see above)."""

    header_timeout = 10.0  # seconds from a request's first byte (or the accept) to its complete head
    send_timeout = 60.0  # seconds a response may wait for the client to read on

    @classmethod
    def with_timeouts(cls, header_timeout: float, send_timeout: float) -> type[HeadReadingWorker]:
        """This worker class with other timeouts (gunicorn takes a class, not an instance)."""
        return type(cls.__name__, (cls,), {"header_timeout": header_timeout, "send_timeout": send_timeout})

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if cfg.is_ssl or cfg.http2_cleartext != "off":
            raise RuntimeError("HeadReadingWorker serves plain HTTP/1.x only (TLS belongs in the reverse proxy)")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Connections reading their head -> deadline. Every deadline is the insertion time
        # plus the same timeout, so the dict is in deadline order.
        self.reading_heads: dict[Connection, float] = {}
        self.lingering: dict[socket.socket, list[float]] = {}  # socket -> [deadline, bytes drained]
        # Connections whose held response the loop is sending -> deadline of the client's next
        # read. A connection goes back to the end when it reads, so the dict is in deadline order.
        self.sending: dict[Connection, float] = {}
        self.held_bytes = 0  # in every connection's `held`, the loop's to send
        # Connections with a complete request head, waiting for their client to receive the
        # previous response -> deadline (the same timeout from now: the dict is in deadline order).
        self.draining: dict[Connection, float] = {}

    def accept(self, listener: Any) -> None:
        try:
            sock, address = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        if self.nr_conns >= self.worker_connections:
            self.evict_idle()
        sock = ProgressSocket(fileno=sock.detach())
        self.read_head(Connection(self.cfg, sock, address, listener.getsockname(), self))

    def evict_idle(self) -> None:
        """Close the oldest connection that has sent nothing of a request (new, or kept alive
        between requests), so the worker goes on accepting: gunicorn stops accepting at
        worker_connections, and one client holding that many idle sockets, reopened every
        header timeout, kept every other client out, the health check included. A client's
        request head arrives within milliseconds of its connection; an idle one waits for
        nothing (nginx drops idle kept-alive connections the same way when it runs short)."""
        idle = next((conn for conn in self.reading_heads if not conn.head), None)
        if idle is not None:
            self.end_head(idle)
            self.nr_conns -= 1
            idle.close()

    def enqueue_req(self, conn: Connection) -> None:
        """Every path to the thread pool (a new connection, a kept-alive one turning
        readable, a pipelined request) comes here: only a complete head goes on."""
        if conn.head_ready:
            conn.head_ready = False
            super().enqueue_req(conn)
        else:
            self.read_head(conn)

    def read_head(self, conn: Connection) -> None:
        # Bytes the parser read ahead (a pipelined request) are the start of the next head.
        conn.head = bytearray(conn.parser.unreader.take_buffered() if conn.parser else b"")
        conn.sock.setblocking(False)
        self.reading_heads[conn] = time.monotonic() + self.header_timeout
        if not self.check_head(conn, 0):
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_head_readable, conn))
            self.on_head_readable(conn, None)  # a kept-alive connection comes back readable

    def on_head_readable(self, conn: Connection, _sock: Any) -> None:
        try:
            data = conn.sock.recv(MAX_HEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.end_head(conn)
            self.nr_conns -= 1
            conn.close()
            return
        seen = len(conn.head)
        conn.head += data
        self.check_head(conn, seen)

    def check_head(self, conn: Connection, seen: int) -> bool:
        """Hand a complete head to the pool, or refuse one too large; False: wait for more."""
        head = conn.head
        # Empty lines before a request are ignored (RFC 9112 section 2.2), as gunicorn does.
        start = max(len(head) - len(head.lstrip(b"\r\n")), seen - len(HEAD_END) + 1)
        if head.find(HEAD_END, start) >= 0:
            self.end_head(conn)
            conn.init()  # the HTTP/1.x parser (no TLS, no HTTP/2: nothing blocks here)
            conn.parser.unreader.unread(bytes(head))
            conn.head = bytearray()
            conn.head_ready = True
            if conn.answered and unacknowledged(conn.sock):
                self.draining[conn] = time.monotonic() + self.send_timeout
            else:
                self.enqueue_req(conn)
            return True
        if len(head) > MAX_HEAD:
            self.end_head(conn)
            self.refuse(conn, HEAD_TOO_LARGE)
            return True
        return False

    def end_head(self, conn: Connection) -> None:
        """The connection is no longer waiting for its head (the poller may not know it yet)."""
        with suppress(KeyError, ValueError):
            self.poller.unregister(conn.sock)
        self.reading_heads.pop(conn, None)

    def refuse(self, conn: Connection, response: bytes) -> None:
        """Answer with a bare status (as far as the socket takes it now) and close."""
        self.nr_conns -= 1
        with suppress(OSError):
            conn.sock.send(response)
        self.linger(conn.sock)

    def murder_pending(self) -> None:
        """Called by the event loop after each wait (at least every second)."""
        super().murder_pending()
        now = time.monotonic()
        if not self.alive:
            # Stopping: connections that have sent nothing yet are closed at once (browsers
            # open spare ones); a head already coming in keeps its deadline.
            for conn in [c for c in self.reading_heads if not c.head]:
                self.end_head(conn)
                self.nr_conns -= 1
                conn.close()
        while self.reading_heads:
            conn, deadline = next(iter(self.reading_heads.items()))
            if deadline > now:
                break
            self.end_head(conn)
            if conn.head:
                self.refuse(conn, REQUEST_TIMEOUT)
            else:
                self.nr_conns -= 1
                conn.close()
        while self.lingering:
            sock, (deadline, _) = next(iter(self.lingering.items()))
            if deadline > now:
                break
            self.end_linger(sock)
        while self.sending:
            conn, deadline = next(iter(self.sending.items()))
            if deadline > now:
                break
            self.cut_off(conn, f"no progress for {self.send_timeout:g} s while sending the response")
        for conn, deadline in list(self.draining.items()):
            if not unacknowledged(conn.sock):
                del self.draining[conn]
                self.enqueue_req(conn)
            elif deadline <= now:
                del self.draining[conn]
                self.cut_off(conn, f"the previous response unread for {self.send_timeout:g} s")

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        super().wait_for_and_dispatch_events(min(timeout, DRAIN_POLL) if self.draining else timeout)

    def linger(self, sock: socket.socket) -> None:
        """Close as gunicorn's close_graceful does (send our FIN, drain what the client still
        sends, so that the kernel does not reset the end of our response), but in the event
        loop: close_graceful blocks the loop for up to 2 s per connection."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self.on_linger_readable)
        except (OSError, ValueError, KeyError):
            util.close(sock)
            return
        self.lingering[sock] = [time.monotonic() + LINGER, 0]

    def on_linger_readable(self, sock: socket.socket) -> None:
        try:
            drained = len(sock.recv(LINGER_BYTES))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            drained = 0
        state = self.lingering[sock]
        state[1] += drained
        if not drained or state[1] >= LINGER_BYTES:
            self.end_linger(sock)

    def end_linger(self, sock: socket.socket) -> None:
        self.lingering.pop(sock, None)
        with suppress(KeyError, ValueError):
            self.poller.unregister(sock)
        util.close(sock)

    def finish_request(self, conn: Connection, fs: Any) -> None:
        """In the event loop, once a thread is done with a request: what the client has not
        taken of the response yet is sent first, and only then is the connection closed or its
        next request read."""
        if conn.sock.held and not conn.reset and not fs.cancelled() and fs.exception() is None:
            self.send_held(conn, fs.result())
        else:
            super().finish_request(conn, fs)

    def send_held(self, conn: Connection, keep_alive: bool) -> None:
        conn.keep_alive = keep_alive
        try:
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_WRITE, partial(self.on_writable, conn))
        except (OSError, ValueError, KeyError):  # closed in the thread (an error after the head)
            self.nr_conns -= 1
            conn.close()
            return
        self.sending[conn] = time.monotonic() + self.send_timeout
        self.held_bytes += len(conn.sock.held)
        # Past the bound, the connections that have read nothing for longest are cut off first.
        while self.held_bytes > HELD_BYTES and (oldest := next(iter(self.sending))) is not conn:
            self.cut_off(oldest, f"{self.held_bytes} bytes held for clients not reading, over {HELD_BYTES}")

    def on_writable(self, conn: Connection, _sock: Any) -> None:
        held = conn.sock.held
        try:
            sent = conn.sock.send(held)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client went away
            self.end_sending(conn)
            self.nr_conns -= 1
            conn.close()
            return
        del held[:sent]
        self.held_bytes -= sent
        del self.sending[conn]
        if held:
            self.sending[conn] = time.monotonic() + self.send_timeout
            return
        self.end_sending(conn)
        sent_all: futures.Future = futures.Future()
        sent_all.set_result(conn.keep_alive)
        super().finish_request(conn, sent_all)  # closed, kept alive, or its next request read

    def end_sending(self, conn: Connection) -> None:
        with suppress(KeyError, ValueError):
            self.poller.unregister(conn.sock)
        self.sending.pop(conn, None)
        self.held_bytes -= len(conn.sock.held)
        conn.sock.held.clear()

    def cut_off(self, conn: Connection, why: str) -> None:
        """Reset a connection whose held response its client does not read."""
        self.end_sending(conn)
        conn.reset = True
        self.nr_conns -= 1
        conn.close()
        # No client address: server logs name no one (web/accesslog.py).
        self.log.warning("%s: %s; connection reset", conn.path, why)

    def handle_request(self, req: Any, conn: Connection) -> bool:
        """Runs in a pool thread, with the head already parsed from memory."""
        conn.path = req.path
        conn.answered = True
        conn.sock.settimeout(self.send_timeout)
        if declares_body(req):
            req.force_close()  # answered with Connection: close; gunicorn then skips its drain
        try:
            return super().handle_request(req, conn)
        except TimeoutError:
            conn.reset = True
            # No client address: server logs name no one (web/accesslog.py).
            self.log.warning("%s: no progress for %g s while sending the response; connection reset",
                             req.path, self.send_timeout)
            raise StopIteration from None  # ThreadWorker.handle: close the connection
