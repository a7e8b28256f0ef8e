# shellcheck shell=bash
# lib_tls.sh - keys and certificates for the TLS tests (test_tls_*.sh);
# source it after lib.sh. Everything is made fresh in the test's temp dir
# with GnuTLS's own tools (psktool, certtool): nothing is shipped.
#
#   tls_psk FILE USER...      a psktool file with one random key per user
#   tls_pki DIR [CN]          a CA and, signed by it, a server certificate
#                             (localhost, 127.0.0.1) and a client one, in
#                             the file names nbdkit, qemu, libnbd and dst
#                             use: ca-cert.pem, server-cert.pem,
#                             server-key.pem, client-cert.pem, client-key.pem

need psktool certtool

tls_psk() {
	local file=$1 user
	shift
	for user in "$@"; do
		psktool -u "$user" -p "$file" >/dev/null 2>&1 || fail "psktool -u $user -p $file"
	done
}

# certtool IN... quietly, failing the test on error.
tls_certtool() {
	certtool "$@" >"$T_TMP/certtool.out" 2>&1 || {
		cat "$T_TMP/certtool.out" >&2
		fail "certtool $*"
	}
}

tls_pki() {
	local dir=$1 cn=${2:-dst test CA}
	mkdir -p "$dir"
	printf 'cn = %s\nca\ncert_signing_key\nexpiration_days = 2\n' "$cn" >"$dir/ca.info"
	printf '%s\n' 'organization = dst test' 'cn = localhost' 'dns_name = localhost' \
		'ip_address = 127.0.0.1' tls_www_server encryption_key signing_key \
		'expiration_days = 2' >"$dir/server.info"
	printf '%s\n' 'organization = dst test' 'cn = dst-client' tls_www_client \
		encryption_key signing_key 'expiration_days = 2' >"$dir/client.info"
	tls_certtool --generate-privkey --key-type=ecdsa --outfile "$dir/ca-key.pem"
	tls_certtool --generate-self-signed --load-privkey "$dir/ca-key.pem" \
		--template "$dir/ca.info" --outfile "$dir/ca-cert.pem"
	local who
	for who in server client; do
		tls_certtool --generate-privkey --key-type=ecdsa --outfile "$dir/$who-key.pem"
		tls_certtool --generate-certificate --load-ca-certificate "$dir/ca-cert.pem" \
			--load-ca-privkey "$dir/ca-key.pem" --load-privkey "$dir/$who-key.pem" \
			--template "$dir/$who.info" --outfile "$dir/$who-cert.pem"
	done
	rm -f "$dir"/*.info
}

# log_has FILE REGEX WHAT: the daemon log FILE has a line matching REGEX.
log_has() {
	grep -Eq "$2" "$1" || {
		tail -20 "$1" >&2
		fail "$3: no line matching '$2' in $(basename "$1")"
	}
}
