"""Every limit authd enforces, named once, with its default and where it comes from.

Owns the numbers; the modules that enforce them import them from here, and
``config.py`` takes the defaults of its ``options`` from here, so a limit is
changed in one place.  Two kinds: sizes fixed by the DNS wire format (RFCs),
and defaults an operator may change in the config (``options.<name>``).
``tests/test_limits.py`` checks that each one is used and has a test.
"""

from __future__ import annotations

# -- The wire format --------------------------------------------------------------------

HEADER_LEN = 12  # RFC 1035 section 4.1.1: the fixed header
OPT_FIXED_SIZE = 11  # RFC 6891 section 6.1.2: root owner, type, class, TTL, RDLENGTH
MAX_NAME_WIRE = 255  # RFC 1035 section 3.1: a name on the wire, root label included
NO_EDNS_UDP_LIMIT = 512  # RFC 1035 section 4.2.1: a UDP message without EDNS
MIN_EDNS_UDP_PAYLOAD = 512  # RFC 6891 section 6.2.5: a smaller payload is read as 512
MAX_MESSAGE = 65535  # RFC 1035 section 4.2.2: the TCP length prefix; also the EDNS payload cap
MAX_RDATA_BYTES = 0xFFFF  # RFC 1035 section 3.2.1: RDLENGTH is 16 bits
MAX_CHAIN = 12  # CNAME links followed inside a zone (BIND and NSD stop near here)
MAX_NSEC3_HASH_CACHE = 4096  # NSEC3 hashes of query names memoised per signed zone version (~1 MB)

# -- Listening and answering (options.*) ------------------------------------------------

DEFAULT_PORT = 5300  # unprivileged, so a first run needs no root
DEFAULT_UDP_PAYLOAD_MAX = 1232  # the DNS flag day 2020 value: no IP fragmentation
DEFAULT_TCP_IDLE_TIMEOUT = 10.0  # seconds with nothing outstanding (RFC 7766 section 6.2.3)
DEFAULT_TCP_IO_TIMEOUT = 0.5  # seconds for a whole message from its first byte (Knot's)
DEFAULT_TCP_MAX_CONNECTIONS = 1000
DEFAULT_TCP_MAX_CONNECTIONS_PER_CLIENT = 100  # an IPv4 address or an IPv6 /64
DEFAULT_ANSWER_CACHE_ENTRIES = 100_000
# UDP socket buffers, as NSD 4 sizes them (server.c: 1 MiB in, 4 MiB out), so a
# burst of queries waits in the kernel instead of being dropped (issue 10).
DEFAULT_UDP_RECEIVE_BUFFER = 1 << 20  # bytes; 0 in the config: the kernel's default
DEFAULT_UDP_SEND_BUFFER = 4 << 20
MIN_UDP_SOCKET_BUFFER = 4096  # bytes; a nonzero setting below this is refused
MAX_UDP_SOCKET_BUFFER = 1 << 30  # Linux stores twice the value in an int
DEFAULT_TSIG_FUDGE = 300  # seconds of clock skew a TSIG may have (RFC 8945 section 5.2.3)
MAX_NSID_BYTES = 512  # our NSID option; fits any response
DEFAULT_SHUTDOWN_TIMEOUT = 5.0  # seconds SIGTERM waits for transfers in flight

# -- History and secondaries (options.*) ------------------------------------------------

DEFAULT_JOURNAL_MAX_ENTRIES = 100  # changesets kept for IXFR per zone
DEFAULT_JOURNAL_MAX_BYTES = 16 * 1024 * 1024  # bytes of journal per zone
# A last-good copy's first lines (its source files and SOA), read at start without the rest.
MAX_LAST_GOOD_HEAD_LINE = 64 * 1024  # longer: no shortcut, the copy is compared whole
DEFAULT_MIN_REFRESH = 60.0  # clamps on a secondary's SOA timers, in seconds, as BIND's
DEFAULT_MAX_REFRESH = 7 * 86400.0
DEFAULT_MIN_RETRY = 10.0
DEFAULT_MAX_RETRY = 86400.0

# -- Input files -------------------------------------------------------------------------

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a config file, read whole
MAX_CONFIG_NODES = 1_000_000  # YAML nodes with aliases expanded (billion laughs)
DEFAULT_MAX_ZONE_RECORDS = 5_000_000  # per zone, files and transfers (BIND's max-records)
# Records in one RRset (owner, type; RRSIG per covered type), files and transfers.
# BIND 9.18's max-records-per-type is 100; 1000 is ten times that (bench/rrl.py's
# 60 A records pass) and still bounds an answer: 1000 A records are ~16 kB on the wire.
DEFAULT_MAX_RECORDS_PER_RRSET = 1000
MAX_ZONE_SOURCE_BYTES = 1 << 30  # zone-file text one zone reads, includes counted
MAX_LINE_CHARS = 1 << 20  # one zone-file line; a 65,535-byte TXT escaped is ~262,000
MAX_RECORD_CHARS = 1 << 20  # one record, all the lines its parentheses span
MAX_TOKEN_CHARS = 1 << 18  # one token: a whole 65,535-byte rdata fits in one hex word
MAX_INCLUDE_DEPTH = 16  # $INCLUDE nesting (the top file is depth 0)
MAX_GENERATE_RECORDS = 1 << 20  # records one $GENERATE makes (a reverse IPv4 /12)
MAX_GENERATE_WIDTH = 127  # widest ${offset,width,base}; BIND formats into 128 bytes
MAX_ACL_DEPTH = 16  # ACLs naming ACLs
MAX_SECRET_FILE_BYTES = 64 * 1024  # a TSIG secret_file
MAX_ECHO_CHARS = 64  # characters of a bad token repeated in an error message
MAX_PORT = 65535  # a UDP or TCP port number

# -- Operations (metrics, sockets) -----------------------------------------------------

METRICS_TICK = 0.01  # seconds: each tick, the next answer per transport is timed
METRICS_FOLD_AT = 10_000  # answers' tallies queued before a tick folds them into the counts
TCP_LISTEN_BACKLOG = 128  # listen() queue of a TCP socket
UDP_MAX_QUERY = 8192  # the largest datagram read (Twisted's listenUDP default)
# -- Response rate limiting (options.rate_limit.*) and DNS cookies (options.cookies.*) ---

DEFAULT_RRL_RESPONSES_PER_SECOND = 200  # NSD's rrl-ratelimit; errors and NXDOMAIN default to it
MAX_RRL_PER_SECOND = 1_000_000  # the largest per-second limit accepted
DEFAULT_RRL_WINDOW = 1  # seconds of credit a bucket banks: a burst of rate x window
MAX_RRL_WINDOW = 3600  # BIND's upper bound for its window
DEFAULT_RRL_SLIP = 2  # every 2nd limited response goes out as TC (BIND and NSD)
MAX_RRL_SLIP = 10  # BIND's upper bound
DEFAULT_RRL_IPV4_PREFIX = 24  # clients counted per /24 (BIND and NSD)
DEFAULT_RRL_IPV6_PREFIX = 56  # and per IPv6 /56 (BIND's; NSD uses /64)
DEFAULT_RRL_TABLE_ENTRIES = 20_000  # buckets kept, least recently used reused (BIND's max)
MAX_RRL_TABLE_ENTRIES = 10_000_000
RRL_PREFIX_CACHE = 4096  # client addresses whose prefix is remembered (cleared when full)
COOKIE_CLIENT_LEN = 8  # RFC 7873 section 4: the client cookie
COOKIE_SERVER_MIN = 8  # RFC 7873 section 4: a server cookie is 8 to 32 bytes
COOKIE_SERVER_MAX = 32
COOKIE_SERVER_LEN = 16  # RFC 9018 section 4: version, reserved, timestamp, hash
COOKIE_SECRET_LEN = 16  # the SipHash-2-4 key (RFC 9018 section 4.4)
COOKIE_MAX_AGE = 3600  # RFC 9018 section 4.3: older server cookies are invalid
COOKIE_MAX_FUTURE = 300  # and so are those dated more than five minutes ahead
COOKIE_REFRESH_AGE = 1800  # a valid one older than this is replaced by a new one

# -- Catalog zones (RFC 9432) --------------------------------------------------------------

MAX_CATALOG_MEMBERS = 100_000  # member zones one interpreted catalog may add; more are ignored
MAX_CATALOG_GROUP_BYTES = 255  # a group property is one TXT string (RFC 9432 section 4.4.2)
MAX_CATALOG_PROBLEMS = 20  # ignored entries one catalog reports by name; the rest are counted

# -- The delegation lab (authd lab) ------------------------------------------------------

MAX_LAB_SERVERS = 100  # servers in one lab.yaml (each a loopback address and a view)
MAX_LAB_ZONES = 500  # zones across a lab
LAB_TRACE_MAX_QUERIES = 60  # queries one `authd lab trace` sends, sub-lookups included
LAB_TRACE_MAX_DEPTH = 4  # nested lookups of a name server's address (missing glue)
LAB_TRACE_TIMEOUT = 2.0  # seconds a trace waits for one answer
LAB_UP_TIMEOUT = 30.0  # seconds `authd lab up --detach` waits for the lab to answer
MAX_LAB_SIGNING_BEHIND = 10 * 366 * 86400  # lab.signing_clock: a zone's signatures dated back
LAB_CHAIN_MAX_KEYS = 20  # DNSKEYs (and DS records) one chain-of-trust step looks at

# -- authd check ---------------------------------------------------------------------------

LINT_MAX_VERIFIED_SIGNATURES = 20_000  # RRSIGs verified per zone (~0.2 ms each); 0: all
LINT_MAX_EXPIRY_DAYS = 3660  # the widest --dnssec-expiry-days (ten years)
LINT_MAX_NSEC3_ITERATIONS = 150  # above, the NSEC3 chain is not hashed (RFC 9276 section 3.2)

# -- Signing (authd.signpolicy, authd.signer) ----------------------------------------------

MAX_SIGNING_DURATION = 10 * 366 * 86400  # the longest duration a signing policy accepts
MAX_NSEC3_SALT_BYTES = 255  # RFC 5155 section 3.1.5: a one-octet length
MIN_SIGNATURE_VALIDITY = 60  # seconds; short only for tests and labs (the default is 14 days)
SIGNING_RETRY = 60.0  # seconds before a failed re-signing is tried again
MAX_PARENTAL_AGENTS = 16  # servers of a zone's dnssec.parental_agents
DS_CHECK_MIN_INTERVAL = 1.0  # seconds: parental agents asked at most this often...
DS_CHECK_MAX_INTERVAL = 300.0  # ...and at least this often (else the parent's propagation delay)
DS_CHECK_TIMEOUT = 3.0  # seconds for one agent's DS answer
KEY_EVENT_MARGIN = 0.05  # seconds after a key event's (whole) second the signing timer wakes
SIGNING_INCEPTION_SKEW = 3600  # inception this far in the past: validators' clocks lag

# -- DNSSEC keys (authd keys, the key store) -----------------------------------------------

MAX_ZONE_KEYS = 64  # keys one zone's keys.json may list (a rollover needs a handful)
MAX_KEY_FILE_BYTES = 64 * 1024  # a .key, .private, .state or keys.json file read
MAX_KEY_TAG_TRIES = 20  # fresh keys drawn before giving up on a tag not yet in use
