"""dovecot.py - a real Dovecot LMTP server for integration tests (Debian's dovecot-core +
dovecot-lmtpd), each instance with everything under its own temp directory: base_dir,
state_dir, log file, a passwd-file userdb (alice, bob, carol @example.org; anyone else gets
550 5.1.1 at RCPT), Maildirs under ROOT/mail/<domain>/<user>/Maildir, only the lmtp protocol,
an LMTP listener on a unix socket in the temp dir and one on 127.0.0.1 at a free port. Running
as root, Dovecot refuses mail access as uid 0, so mail is stored as the `dovecot` user
(mail_uid) and the mail directory is handed to it; as another user, everything runs as that
user (anvil without its chroot, which needs root). Stop it in a cleanup (SIGTERM, then SIGKILL
of its process group)."""
import getpass
import glob
import grp
import os
import pwd
import signal
import socket
import subprocess
import time

DOVECOT = "/usr/sbin/dovecot"
USERS = ("alice", "bob", "carol")
DOMAIN = "example.org"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mail_identity():
    """(user name, uid, gid) that Dovecot stores mail as, and its internal user, internal group
    and login user."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("dovecot")  # created by dovecot-core
        return pw.pw_name, pw.pw_uid, pw.pw_gid, "dovecot", "dovecot", "dovenull"
    me = getpass.getuser()
    group = grp.getgrgid(os.getgid()).gr_name
    return me, os.getuid(), os.getgid(), me, group, me


class Dovecot:
    """One Dovecot instance in its own temp directory."""

    def __init__(self, root):
        self.root = root
        self.sock = os.path.join(root, "lmtp.sock")
        self.port = free_port()
        self.mail = os.path.join(root, "mail")
        self.log_path = os.path.join(root, "dovecot.log")
        self.stderr_path = os.path.join(root, "dovecot.stderr")
        self.proc = None

    def write_config(self):
        user, uid, gid, internal, group, login = mail_identity()
        os.chmod(self.root, 0o755)  # the mail user must reach TMP/mail
        os.makedirs(self.mail)
        os.chown(self.mail, uid, gid)
        users = os.path.join(self.root, "users")
        with open(users, "w") as f:
            for u in USERS:
                f.write("%s@%s:{PLAIN}secret::::::\n" % (u, DOMAIN))
        conf = os.path.join(self.root, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("""\
protocols = lmtp
base_dir = {root}/run
state_dir = {root}/state
log_path = {log}
ssl = no
listen = 127.0.0.1
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
mail_uid = {user}
mail_gid = {gid}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{root}/mail/%d/%n/Maildir
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service anvil {{
  chroot =
}}
service lmtp {{
  unix_listener {sock} {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
""".format(root=self.root, log=self.log_path, internal=internal, group=group, login=login, user=user,
           uid=uid, gid=gid, users=users, sock=self.sock, port=self.port))
        return conf

    def start(self):
        conf = self.write_config()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", conf], stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dovecot exited at start (rc=%s)\n%s"
                                     % (self.proc.returncode, self.log()))
            if os.path.exists(self.sock) and self._tcp_up():
                return
            time.sleep(0.05)
        raise AssertionError("dovecot's LMTP listeners did not appear within %ss\n%s"
                             % (START_TIMEOUT, self.log()))

    def _tcp_up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        try:  # the master, and any child it left behind
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(STOP_TIMEOUT)

    def log(self):
        out = []
        for path in (self.log_path, self.stderr_path):
            try:
                with open(path, "rb") as f:
                    out.append("--- %s\n%s" % (path, f.read().decode("utf-8", "replace")))
            except OSError as e:
                out.append("--- %s: %s" % (path, e))
        return "\n".join(out)

    def maildir_new(self, user):
        """The message files in user's Maildir/new, sorted."""
        return sorted(glob.glob(os.path.join(self.mail, DOMAIN, user, "Maildir", "new", "*")))


def strip_dovecot_headers(data):
    """The stored message without the Return-Path, Delivered-To (single-recipient sessions) and
    Received header lines Dovecot put on top. Returns (return_path_line, rest)."""
    lines = data.split(b"\n")
    rp = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"Return-Path:") and rp is None:
            rp = line
        elif not (line.startswith((b"Received:", b"Delivered-To:"))
                  or (i > 0 and line[:1] in (b" ", b"\t"))):
            break
        i += 1
    return rp, b"\n".join(lines[i:])


