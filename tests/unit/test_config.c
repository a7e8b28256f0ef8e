/* test_config.c - "key = value" configs: parsing, editing, atomic save/load. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "unit.h"

static bool parse_ok(const char *text, struct conf *c)
{
	char err[256] = "";
	int rc = conf_parse(text, c, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "conf_parse: %d: %s\n", rc, err);
		return false;
	}
	return true;
}

/* Expect -EINVAL with this exact message; the conf is left empty. */
static bool parse_fails(const char *text, const char *msg)
{
	struct conf c = {0};
	char err[256] = "";
	int rc = conf_parse(text, &c, err, sizeof(err));
	bool ok = rc == -EINVAL && !strcmp(err, msg) && c.n == 0 && c.e == NULL;
	if (!ok)
		fprintf(stderr, "conf_parse(\"%s\") = %d \"%s\", expected -EINVAL \"%s\"\n", text,
			rc, err, msg);
	conf_free(&c);
	return ok;
}

TEST(parse_basic)
{
	struct conf c;
	const char *text = "# a comment\n"
			   "\n"
			   "type = export\n"
			   "   disk=/srv/disk0.img   \n"
			   "\t# indented comment\n"
			   "listen =  127.0.0.1:10809\n"
			   "   \t  \n"
			   "listen=[::1]:10809\n"
			   "empty =\n"
			   "with.dots_and-dashes = a = b # not a comment\n"
			   "last = no newline";
	CHECK(parse_ok(text, &c));
	CHECK_EQ(c.n, 7);
	CHECK_STR(conf_get(&c, "type"), "export");
	CHECK_STR(conf_get(&c, "disk"), "/srv/disk0.img");
	CHECK_STR(conf_get(&c, "listen"), "127.0.0.1:10809");
	CHECK_STR(conf_get_nth(&c, "listen", 0), "127.0.0.1:10809");
	CHECK_STR(conf_get_nth(&c, "listen", 1), "[::1]:10809");
	CHECK(conf_get_nth(&c, "listen", 2) == NULL);
	CHECK_EQ(conf_count(&c, "listen"), 2);
	CHECK_STR(conf_get(&c, "empty"), "");
	CHECK_STR(conf_get(&c, "with.dots_and-dashes"), "a = b # not a comment");
	CHECK_STR(conf_get(&c, "last"), "no newline");
	CHECK(conf_get(&c, "missing") == NULL);
	CHECK_EQ(conf_count(&c, "missing"), 0);
	/* Keys are case-sensitive. */
	CHECK(conf_get(&c, "TYPE") == NULL);
	/* Line numbers are kept. */
	CHECK_EQ(c.e[0].line, 3);
	CHECK_EQ(c.e[1].line, 4);
	CHECK_EQ(c.e[3].line, 8);
	CHECK_EQ(c.e[6].line, 11);
	conf_free(&c);
	CHECK_EQ(c.n, 0);
	CHECK(c.e == NULL);
	conf_free(&c); /* twice is fine */

	/* Empty and comment-only texts. */
	CHECK(parse_ok("", &c));
	CHECK_EQ(c.n, 0);
	conf_free(&c);
	CHECK(parse_ok("# only\n\n   \n#x = y\n", &c));
	CHECK_EQ(c.n, 0);
	conf_free(&c);
	/* CRLF line ends. */
	CHECK(parse_ok("a = 1\r\nb = 2\r\n", &c));
	CHECK_STR(conf_get(&c, "a"), "1");
	CHECK_STR(conf_get(&c, "b"), "2");
	conf_free(&c);
}

TEST(parse_errors)
{
	CHECK(parse_fails("novalue\n", "line 1: expected 'key = value'"));
	CHECK(parse_fails("a = 1\n\n# c\nb 2\n", "line 4: expected 'key = value'"));
	CHECK(parse_fails("= value\n", "line 1: missing key before '='"));
	CHECK(parse_fails("a = 1\n   = value\n", "line 2: missing key before '='"));
	CHECK(parse_fails("two words = x\n", "line 1: bad character ' ' in key"));
	CHECK(parse_fails("a=1\nb=2\nk/ey = x\n", "line 3: bad character '/' in key"));
	CHECK(parse_fails("k:y = x", "line 1: bad character ':' in key"));
	CHECK(parse_fails("[section]\n", "line 1: expected 'key = value'"));
	CHECK(parse_fails("ok = 1\nk\"ey = x\n", "line 2: bad character '\"' in key"));
}

TEST(edit)
{
	struct conf c = {0};
	conf_add(&c, "node", "a");
	conf_add(&c, "alg", "linear");
	conf_add(&c, "node", "b");
	conf_add(&c, "node", "c");
	CHECK_EQ(c.n, 4);
	CHECK_EQ(conf_count(&c, "node"), 3);
	CHECK_STR(conf_get_nth(&c, "node", 0), "a");
	CHECK_STR(conf_get_nth(&c, "node", 1), "b");
	CHECK_STR(conf_get_nth(&c, "node", 2), "c");
	CHECK(conf_get_nth(&c, "node", 3) == NULL);
	CHECK(conf_get_nth(&c, "alg", 1) == NULL);

	/* set replaces the first and drops later duplicates, keeping its place. */
	conf_set(&c, "node", "z");
	CHECK_EQ(c.n, 2);
	CHECK_EQ(conf_count(&c, "node"), 1);
	CHECK_STR(c.e[0].key, "node");
	CHECK_STR(c.e[0].val, "z");
	CHECK_STR(c.e[1].key, "alg");
	/* set on a new key appends. */
	conf_set(&c, "chunk", "64K");
	CHECK_EQ(c.n, 3);
	CHECK_STR(c.e[2].key, "chunk");
	CHECK_STR(conf_get(&c, "chunk"), "64K");
	conf_set(&c, "chunk", "1M");
	CHECK_EQ(c.n, 3);
	CHECK_STR(conf_get(&c, "chunk"), "1M");

	/* del removes every occurrence, keeps the rest in order. */
	conf_add(&c, "node", "y");
	conf_add(&c, "x", "1");
	conf_del(&c, "node");
	CHECK_EQ(c.n, 3);
	CHECK_EQ(conf_count(&c, "node"), 0);
	CHECK_STR(c.e[0].key, "alg");
	CHECK_STR(c.e[1].key, "chunk");
	CHECK_STR(c.e[2].key, "x");
	conf_del(&c, "nothing");
	CHECK_EQ(c.n, 3);
	conf_del(&c, "alg");
	conf_del(&c, "chunk");
	conf_del(&c, "x");
	CHECK_EQ(c.n, 0);
	conf_add(&c, "again", "1");
	CHECK_STR(conf_get(&c, "again"), "1");
	/* The value is copied, not referenced. */
	char val[] = "mutable";
	conf_set(&c, "copy", val);
	val[0] = 'X';
	CHECK_STR(conf_get(&c, "copy"), "mutable");
	conf_free(&c);
}

static char *make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/dst-test-config.XXXXXX", base && *base ? base : "/tmp");
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

/* Number of directory entries other than . and .. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	static char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

TEST(save_load_round_trip)
{
	char *dir = make_tmpdir();
	CHECK(dir != NULL);
	if (!dir)
		return;
	char path[600], err[512] = "";
	snprintf(path, sizeof(path), "%s/s1.conf", dir);

	struct conf c = {0};
	conf_set(&c, "type", "export");
	conf_set(&c, "disk", "/srv/disk 0.img"); /* spaces inside values survive */
	conf_add(&c, "allow", "10.0.0.0/8:ro");
	conf_add(&c, "allow", "[fd00::/64]:rw");
	conf_set(&c, "empty", "");
	CHECK_EQ(conf_save(path, &c, err, sizeof(err)), 0);
	CHECK_EQ(count_entries(dir), 1); /* no temp file left behind */

	const char *text = read_file(path);
	CHECK(text && text[0] == '#'); /* a header comment */
	CHECK(text && strstr(text, "\ntype = export\n"));

	struct conf d;
	CHECK_EQ(conf_load(path, &d, err, sizeof(err)), 0);
	CHECK_EQ(d.n, c.n);
	for (size_t i = 0; i < c.n && i < d.n; i++) {
		CHECK_STR(d.e[i].key, c.e[i].key);
		CHECK_STR(d.e[i].val, c.e[i].val);
	}
	conf_free(&d);

	/* Saving again replaces the file whole (rename over it). */
	struct stat st1, st2;
	CHECK_EQ(stat(path, &st1), 0);
	conf_del(&c, "allow");
	conf_set(&c, "type", "storage");
	CHECK_EQ(conf_save(path, &c, err, sizeof(err)), 0);
	CHECK_EQ(stat(path, &st2), 0);
	CHECK(st1.st_ino != st2.st_ino); /* a new inode: written aside, then renamed */
	CHECK_EQ(count_entries(dir), 1);
	CHECK_EQ(conf_load(path, &d, err, sizeof(err)), 0);
	CHECK_EQ(d.n, 3);
	CHECK_STR(conf_get(&d, "type"), "storage");
	CHECK_EQ(conf_count(&d, "allow"), 0);
	conf_free(&d);

	/* An empty config round-trips too. */
	struct conf e = {0};
	CHECK_EQ(conf_save(path, &e, err, sizeof(err)), 0);
	CHECK_EQ(conf_load(path, &d, err, sizeof(err)), 0);
	CHECK_EQ(d.n, 0);
	conf_free(&d);

	/* Load errors: a missing file gives -ENOENT naming the path; a bad line
	 * names the path and the line. */
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/missing.conf", dir);
	CHECK_EQ(conf_load(missing, &d, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "missing.conf") != NULL);
	char bad[600];
	snprintf(bad, sizeof(bad), "%s/bad.conf", dir);
	FILE *f = fopen(bad, "w");
	if (f) {
		fputs("a = 1\noops\n", f);
		fclose(f);
	}
	CHECK_EQ(conf_load(bad, &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "bad.conf") != NULL);
	CHECK(strstr(err, "line 2") != NULL);
	unlink(bad);

	/* Saving into a directory that does not exist fails cleanly. */
	char nodir[700];
	snprintf(nodir, sizeof(nodir), "%s/no/such/dir/x.conf", dir);
	err[0] = '\0';
	CHECK_EQ(conf_save(nodir, &c, err, sizeof(err)), -ENOENT);
	CHECK(err[0] != '\0');
	CHECK_EQ(count_entries(dir), 1);

	conf_free(&c);
	unlink(path);
	CHECK_EQ(rmdir(dir), 0);
	free(dir);
}

/* ---- what dstd and dst both refuse (conf_keys.c) ---- */

TEST(duplicate_keys)
{
	CHECK(parse_fails("type = storage\nalg = alg_linear\nalg = alg_stripe\n",
			  "line 3: alg given twice (first on line 2)"));
	CHECK(parse_fails("io-timeout = 5\n# again\nio-timeout = 5\n",
			  "line 3: io-timeout given twice (first on line 1)"));
	/* Keys that take one line each may repeat, and so may unknown ones
	 * (nothing reads them). */
	struct conf c;
	CHECK(parse_ok("node = disk start=0 size=8 /a\nnode = disk start=8 size=8 /b\n"
		       "allow = 10.0.0.0/8\nallow = ::1\nlisten = :1\nlisten = :2\n"
		       "socket = /s1\nsocket = /s2\nfuture-key = 1\nfuture-key = 2\n",
		       &c));
	CHECK_EQ(c.n, 10);
	conf_free(&c);
}

TEST(bad_values)
{
	CHECK(parse_fails("region-size = 0\n",
			  "line 1: region-size '0': expected a power of two from 4K to 1G"));
	CHECK(parse_fails("a = 1\nregion-size = 3M\n",
			  "line 2: region-size '3M': expected a power of two from 4K to 1G"));
	CHECK(parse_fails("chunk = 2G\n",
			  "line 1: chunk '2G': expected a power of two from 4K to 1G"));
	CHECK(parse_fails("resync-rate = 0\n",
			  "line 1: resync-rate '0': expected a size of at least 4K"));
	CHECK(parse_fails("resync-rate = fast\n",
			  "line 1: resync-rate 'fast': expected a size of at least 4K"));
	CHECK(parse_fails("io-timeout = 99999999999\n",
			  "line 1: io-timeout '99999999999': expected a whole number from 0 to "
			  "31536000"));
	CHECK(parse_fails("request-timeout = 0\n",
			  "line 1: request-timeout '0': expected a whole number from 1 to 86400"));
	CHECK(parse_fails("backlog = -1\n",
			  "line 1: backlog '-1': expected a whole number from 1 to 65535"));
	CHECK(
	    parse_fails("buffers = 4K\n", "line 1: buffers '4K': expected a size from 1M to 64G"));
	CHECK(parse_fails("max-clients = 0\n",
			  "line 1: max-clients '0': expected a whole number from 1 to 65536"));
	CHECK(
	    parse_fails("alg = raid5\n",
			"line 1: alg 'raid5': expected one of "
			"alg_linear|alg_stripe|alg_mirror|alg_parity|linear|stripe|mirror|parity"));
	CHECK(parse_fails("type = volume\n",
			  "line 1: type 'volume': expected one of storage|export"));
	CHECK(parse_fails("tls = maybe\n",
			  "line 1: tls 'maybe': expected one of off|on|require|no|yes|0|1"));
	CHECK(parse_fails("assume-clean = sure\n",
			  "line 1: assume-clean 'sure': expected one of yes|no"));
	CHECK(parse_fails(
	    "on-event-timeout = 86401\n",
	    "line 1: on-event-timeout '86401': expected a whole number from 0 to 86400"));
	CHECK(parse_fails("on-event = /a\non-event = /b\n",
			  "line 2: on-event given twice (first on line 1)"));
	CHECK(parse_fails("uuid = 0011\n", "line 1: uuid '0011': expected 32 hex digits"));
	CHECK(
	    parse_fails("uuid = 00112233445566778899aabbccddeefg\n",
			"line 1: uuid '00112233445566778899aabbccddeefg': expected 32 hex digits"));
	/* And the good ones pass, at the edges of their ranges. */
	struct conf c;
	CHECK(parse_ok("region-size = 4K\nchunk = 1G\nresync-rate = 4096\nio-timeout = 0\n"
		       "request-timeout = 86400\nbacklog = 65535\nalg = mirror\ntype = storage\n"
		       "tls = require\nassume-clean = yes\nreadonly = 1\n"
		       "uuid = 00112233445566778899AABBCCDDEEFF\n",
		       &c));
	CHECK_EQ(c.n, 12);
	conf_free(&c);
}

/* conf_load of PATH fails with a message that holds each of the needles. */
static bool load_fails(const char *path, const char *n1, const char *n2)
{
	struct conf c = {(void *)1, 1};
	char err[512] = "";
	int rc = conf_load(path, &c, err, sizeof(err));
	bool ok = rc < 0 && c.n == 0 && c.e == NULL && strstr(err, path) && strstr(err, n1) &&
		  (!n2 || strstr(err, n2));
	if (!ok)
		fprintf(stderr, "conf_load(%s) = %d \"%s\", expected '%s' '%s'\n", path, rc, err,
			n1, n2 ? n2 : "");
	return ok;
}

TEST(load_refuses)
{
	char *dir = make_tmpdir();
	CHECK(dir != NULL);
	if (!dir)
		return;
	char path[600];
	/* A NUL byte: the rest of the file must not be dropped unseen. */
	snprintf(path, sizeof(path), "%s/nul.conf", dir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		static const char text[] = "type = storage\nalg = alg_linear\0\nalg = x\n";
		fwrite(text, 1, sizeof(text) - 1, f);
		fclose(f);
	}
	CHECK(load_fails(path, "line 2: a NUL byte", NULL));
	CHECK_EQ(unlink(path), 0);
	/* A duplicate key: named with the file and its line. */
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("type = storage\nregion-size = 1M\nregion-size = 0\n", f);
		fclose(f);
	}
	CHECK(load_fails(path, "line 3: region-size '0'", NULL));
	CHECK_EQ(unlink(path), 0);
	/* A FIFO: refused at once, not read (a read would block for ever). */
	snprintf(path, sizeof(path), "%s/fifo.conf", dir);
	CHECK_EQ(mkfifo(path, 0600), 0);
	alarm(10); /* a hang fails the test instead of stalling it */
	CHECK(load_fails(path, "not a regular file", "a FIFO"));
	alarm(0);
	CHECK_EQ(unlink(path), 0);
	/* A directory, a device. */
	snprintf(path, sizeof(path), "%s/dir.conf", dir);
	CHECK_EQ(mkdir(path, 0700), 0);
	CHECK(load_fails(path, "not a regular file", "a directory"));
	CHECK_EQ(rmdir(path), 0);
	CHECK(load_fails("/dev/zero", "not a regular file", "a device"));
	/* Too large to be a config. */
	snprintf(path, sizeof(path), "%s/big.conf", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		CHECK_EQ(ftruncate(fileno(f), 2 << 20), 0);
		fclose(f);
	}
	CHECK(load_fails(path, "too large", NULL));
	CHECK_EQ(unlink(path), 0);
	/* A missing file keeps its errno: callers tell "no such storage". */
	struct conf c;
	char err[512];
	snprintf(path, sizeof(path), "%s/none.conf", dir);
	CHECK_EQ(conf_load(path, &c, err, sizeof(err)), -ENOENT);
	CHECK_EQ(rmdir(dir), 0);
	free(dir);
}

UNIT_MAIN(T(parse_basic), T(parse_errors), T(edit), T(save_load_round_trip), T(duplicate_keys),
	  T(bad_values), T(load_refuses))
