/* SPDX-License-Identifier: GPL-2.0-only */
/* ckpt: checkpoint/restore for Linux processes.  The command line follows
 * CRIU's where the meaning is the same. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "dump.h"
#include "image.h"
#include "lazy.h"
#include "log.h"
#include "pageserver.h"
#include "pagecodec.h"
#include "plugin.h"
#include "restore.h"
#include "show.h"
#include "track.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ckpt [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Checkpoint a running process into a directory of images and restore it later.\n"
		"\n"
		"Commands:\n"
		"  dump -t PID -D DIR      save the process PID into DIR, then kill it (unless -R)\n"
		"  pre-dump -t PID -D DIR  save its memory while it keeps running and track its\n"
		"                          writes, so a later dump --prev-images-dir saves only\n"
		"                          what changed (--cleanup -D DIR: stop the tracking)\n"
		"  restore -D DIR          bring the process saved in DIR back, with its PID\n"
		"  show DIR                decode every image in DIR (--json for scripts)\n"
		"  check                   which kernel features and plugins work here (--json)\n"
		"  plugins                 list the loaded plugins, their ABI, hooks and classes (--json)\n"
		"  page-server -D DIR --port N  receive a dump streamed by `dump --page-server`\n"
		"                          into DIR (with --lazy-pages: serve the pages of the\n"
		"                          dump in DIR to `lazy-pages --page-server`)\n"
		"  lazy-pages -D DIR       serve the memory of a `restore --lazy-pages` on demand\n"
		"\n"
		"Options:\n"
		"  -t, --tree PID          process to dump\n"
		"  -D, --images-dir DIR    directory of the images\n"
		"  -R, --leave-running     dump: leave the process running afterwards\n"
		"  -d, --restore-detached  restore: return once the process runs (else wait for it\n"
		"                          and exit with its status)\n"
		"      --prev-images-dir D dump, pre-dump: save only the pages changed since the\n"
		"                          (pre-)dump in D (relative paths: from the -D directory);\n"
		"                          page-server: link the parent of an incremental dump to D\n"
		"      --track-mem         dump -R: keep tracking writes for a later dump\n"
		"      --cleanup           pre-dump: stop the tracking left for DIR\n"
		"      --pidfile FILE      restore: write the restored PID to FILE\n"
		"      --pidns             restore: into a new pid namespace, so the copy keeps its\n"
		"                          PID while the original still runs\n"
		"  -j, --shell-job         the tree runs on the terminal of the shell that started\n"
		"                          it: restore gives it ckpt's terminal (fs plugin)\n"
		"      --plugins=a,b       enable exactly these plugins for this run\n"
		"      --config FILE       INI configuration (else $CKPT_CONFIG, /etc/ckpt/ckpt.conf)\n"
		"      --plugin-opt P.K=V  set key K of plugin P for this run (over the config)\n"
		"      --file-validation=M restore: check regular files by filesize (default) or\n"
		"                          none: also open files whose size changed (fs plugin)\n"
		"      --tcp-established   dump/restore established TCP connections (net plugin)\n"
		"      --ext-unix-sk       allow unix sockets whose peer is outside the tree (net)\n"
		"      --freeze-cgroup PATH  freeze this cgroup first for a consistent dump (cgroup)\n"
		"      --manage-cgroups[=MODE] none, props, soft, full, strict (cgroup)\n"
		"      --cgroup-root PATH  restore under another cgroup root (cgroup)\n"
		"      --external veth[IN]:OUT  restore: veth IN of the tree's network namespace\n"
		"                          gets its outside end named OUT (net)\n"
		"      --external mnt[A]:B  dump: mount point A of the tree's mount namespace is\n"
		"                          external, saved as key B; restore: bind host path B\n"
		"                          where the mount of key A was (fs; may repeat)\n"
		"      --compress[=CODEC[:LEVEL]]  dump: compress the page images (lz4, lz4:fast,\n"
		"                          zstd, zstd:LEVEL; none); restore detects it by itself\n"
		"      --json              machine-readable output for show, check and plugins\n"
		"      --page-server       dump, pre-dump: stream every image to a page server\n"
		"                          instead of writing DIR (a chain keeps its page maps in\n"
		"                          DIR for the next dump); lazy-pages: fetch pages from one\n"
		"      --address A         page server address (default 127.0.0.1; page-server:\n"
		"                          where to listen, default any)\n"
		"      --port N            page server TCP port\n"
		"      --status-fd FD      page-server, lazy-pages: write one byte to FD when ready\n"
		"      --lazy-pages        restore: leave private anonymous memory to a running\n"
		"                          `ckpt lazy-pages -D DIR`; page-server: lazy mode\n"
		"  -v[N], --verbose[=N]    more log output (N: 1 errors .. 4 debug; -v alone is 3)\n"
		"  -o, --log-file FILE     write the log to FILE (relative to -D unless absolute)\n"
		"  -h, --help              this help\n"
		"  -V, --version           print the version\n"
		"\n"
		"Exit status: 0 on success, 1 on failure.  See ckpt(8), ckpt.conf(5), ckpt-plugin(7).\n");
}

enum {
	OPT_PIDFILE = 256,
	OPT_FILE_VALIDATION,
	OPT_SHELL_JOB,
	OPT_PLUGINS,
	OPT_CONFIG,
	OPT_JSON,
	OPT_PIDNS,
	OPT_PLUGIN_OPT,
	OPT_TCP_ESTABLISHED,
	OPT_EXT_UNIX_SK,
	OPT_FREEZE_CGROUP,
	OPT_MANAGE_CGROUPS,
	OPT_CGROUP_ROOT,
	OPT_EXTERNAL,
	OPT_PAGE_SERVER,
	OPT_ADDRESS,
	OPT_PORT,
	OPT_STATUS_FD,
	OPT_LAZY_PAGES,
	OPT_COMPRESS,
	OPT_PREV_IMAGES_DIR,
	OPT_TRACK_MEM,
	OPT_CLEANUP,
};

/* Plugin keys given on the command line, applied over the config file. */
struct plugin_opt {
	char plugin[64], key[64];
	const char *value;
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "leave-running", no_argument, NULL, 'R' },
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "verbose", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "pidfile", required_argument, NULL, OPT_PIDFILE },
		{ "file-validation", required_argument, NULL, OPT_FILE_VALIDATION },
		{ "shell-job", no_argument, NULL, OPT_SHELL_JOB },
		{ "plugins", required_argument, NULL, OPT_PLUGINS },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "pidns", no_argument, NULL, OPT_PIDNS },
		{ "plugin-opt", required_argument, NULL, OPT_PLUGIN_OPT },
		{ "tcp-established", no_argument, NULL, OPT_TCP_ESTABLISHED },
		{ "ext-unix-sk", no_argument, NULL, OPT_EXT_UNIX_SK },
		{ "freeze-cgroup", required_argument, NULL, OPT_FREEZE_CGROUP },
		{ "manage-cgroups", optional_argument, NULL, OPT_MANAGE_CGROUPS },
		{ "cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT },
		{ "external", required_argument, NULL, OPT_EXTERNAL },
		{ "page-server", no_argument, NULL, OPT_PAGE_SERVER },
		{ "address", required_argument, NULL, OPT_ADDRESS },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "status-fd", required_argument, NULL, OPT_STATUS_FD },
		{ "lazy-pages", no_argument, NULL, OPT_LAZY_PAGES },
		{ "compress", optional_argument, NULL, OPT_COMPRESS },
		{ "prev-images-dir", required_argument, NULL, OPT_PREV_IMAGES_DIR },
		{ "track-mem", no_argument, NULL, OPT_TRACK_MEM },
		{ "cleanup", no_argument, NULL, OPT_CLEANUP },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *logfile = NULL, *pidfile = NULL, *only = NULL, *cfgpath = NULL;
	const char *compress = NULL; /* "" for --compress alone */
	const char *prev_dir = NULL;
	bool track_mem = false, cleanup = false;
	bool leave_running = false, detach = false, shell_job = false, json = false, pidns = false;
	int verbosity = CKPT_LOG_WARN, opt;
	bool verbosity_given = false;
	long pid = 0;
	bool have_pid = false;
	struct plugin_opt popts[32];
	size_t npopts = 0;
	static char ext_veth[1024];
	/* every --external mnt[..]:.. joined by ',' for the fs plugin's key */
	static char externals[8192];
	/* page server and lazy pages */
	bool page_server = false, lazy_pages = false;
	const char *address = NULL;
	int port = 0, status_fd = -1;

	while ((opt = getopt_long(argc, argv, "t:D:Rdjv::o:hV", longopts, NULL)) != -1) {
		if (opt == 'j') /* CRIU's short form */
			opt = OPT_SHELL_JOB;
		switch (opt) {
		case 't': {
			char *end;
			pid = strtol(optarg, &end, 10);
			if (*end || pid <= 0 || pid > 0x7fffffff) {
				fprintf(stderr, "ckpt: -t: \"%s\" is not a PID\n", optarg);
				return 1;
			}
			have_pid = true;
			break;
		}
		case 'D':
			dir = optarg;
			break;
		case 'R':
			leave_running = true;
			break;
		case 'd':
			detach = true;
			break;
		case 'v':
			if (optarg) {
				const char *a = optarg;
				/* -vvvv counts like CRIU's */
				if (a[0] == 'v')
					verbosity = CKPT_LOG_WARN + 1 + (int)strspn(a, "v");
				else
					verbosity = atoi(a) - 1;
			} else {
				verbosity = CKPT_LOG_INFO;
			}
			verbosity_given = true;
			if (verbosity > CKPT_LOG_DEBUG)
				verbosity = CKPT_LOG_DEBUG;
			if (verbosity < CKPT_LOG_ERROR)
				verbosity = CKPT_LOG_ERROR;
			break;
		case 'o':
			logfile = optarg;
			break;
		case OPT_PIDFILE:
			pidfile = optarg;
			break;
		case OPT_PLUGINS:
			only = optarg;
			break;
		case OPT_CONFIG:
			cfgpath = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_PIDNS:
			pidns = true;
			break;
		case OPT_EXTERNAL: {
			/* CRIU's --external veth[IN]:OUT (net) and mnt[A]:B (fs);
			 * repeated ones add up */
			if (!strncmp(optarg, "mnt[", 4) && strstr(optarg, "]:")) {
				size_t used = strlen(externals);
				if (used + strlen(optarg) + 2 > sizeof(externals)) {
					fprintf(stderr, "ckpt: too many --external options\n");
					return 1;
				}
				snprintf(externals + used, sizeof(externals) - used, "%s%s",
					 used ? "," : "", optarg);
				break;
			}
			const char *close = strstr(optarg, "]:");
			if (strncmp(optarg, "veth[", 5) || !close || close == optarg + 5 || !close[2]) {
				fprintf(stderr, "ckpt: --external \"%s\": expected veth[INNER]:OUTER or mnt[A]:B\n",
					optarg);
				return 1;
			}
			size_t used = strlen(ext_veth);
			int n = snprintf(ext_veth + used, sizeof(ext_veth) - used, "%s%.*s:%s",
					 used ? "," : "", (int)(close - optarg - 5), optarg + 5, close + 2);
			if (n < 0 || (size_t)n >= sizeof(ext_veth) - used) {
				fprintf(stderr, "ckpt: too many --external options\n");
				return 1;
			}
			break;
		}
		case OPT_COMPRESS: {
			struct pagecodec_opts co;
			compress = optarg ? optarg : "";
			if (pagecodec_parse(compress, &co)) {
				fprintf(stderr, "ckpt: --compress=%s: unknown codec or level (use none, lz4, lz4:fast, lz4:ACCEL, zstd or zstd:LEVEL)\n",
					compress);
				return 1;
			}
			break;
		}
		case OPT_PAGE_SERVER:
			page_server = true;
			break;
		case OPT_LAZY_PAGES:
			lazy_pages = true;
			break;
		case OPT_ADDRESS:
			address = optarg;
			break;
		case OPT_PORT:
		case OPT_STATUS_FD: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > (opt == OPT_PORT ? 65535 : 0x7fffffff)) {
				fprintf(stderr, "ckpt: --%s: \"%s\" is not a %s\n",
					opt == OPT_PORT ? "port" : "status-fd", optarg,
					opt == OPT_PORT ? "TCP port" : "file descriptor");
				return 1;
			}
			if (opt == OPT_PORT)
				port = (int)v;
			else
				status_fd = (int)v;
			break;
		}
		case OPT_PREV_IMAGES_DIR:
			prev_dir = optarg;
			break;
		case OPT_TRACK_MEM:
			track_mem = true;
			break;
		case OPT_CLEANUP:
			cleanup = true;
			break;
		case OPT_PLUGIN_OPT:
		case OPT_SHELL_JOB:
		case OPT_TCP_ESTABLISHED:
		case OPT_EXT_UNIX_SK:
		case OPT_FREEZE_CGROUP:
		case OPT_MANAGE_CGROUPS:
		case OPT_CGROUP_ROOT:
		case OPT_FILE_VALIDATION: {
			if (npopts == sizeof(popts) / sizeof(popts[0])) {
				fprintf(stderr, "ckpt: too many plugin options\n");
				return 1;
			}
			/* CRIU's flags, answered by keys of the plugins that own
			 * the resource: the core knows no socket, tty or cgroup */
			static const struct {
				int opt;
				const char *plugin, *key, *value;
			} flags[] = {
				{ OPT_TCP_ESTABLISHED, "net", "tcp_established", "true" },
				{ OPT_EXT_UNIX_SK, "net", "ext_unix_sk", "true" },
				{ OPT_SHELL_JOB, "fs", "shell_job", "true" },
				{ OPT_FREEZE_CGROUP, "cgroup", "freeze_cgroup", NULL },
				{ OPT_MANAGE_CGROUPS, "cgroup", "manage_cgroups", "soft" },
				{ OPT_CGROUP_ROOT, "cgroup", "cgroup_root", NULL },
				{ OPT_FILE_VALIDATION, "fs", "file_validation", NULL },
			};
			if (opt == OPT_SHELL_JOB)
				shell_job = true;
			struct plugin_opt *po = &popts[npopts++];
			bool mapped = false;
			for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
				if (flags[f].opt != opt)
					continue;
				snprintf(po->plugin, sizeof(po->plugin), "%s", flags[f].plugin);
				snprintf(po->key, sizeof(po->key), "%s", flags[f].key);
				po->value = optarg ? optarg : flags[f].value;
				mapped = true;
			}
			if (mapped)
				break;
			const char *dot = strchr(optarg, '.'), *eq = strchr(optarg, '=');
			if (!dot || !eq || eq < dot || dot == optarg || eq == dot + 1 ||
			    (size_t)(dot - optarg) >= sizeof(po->plugin) ||
			    (size_t)(eq - dot - 1) >= sizeof(po->key)) {
				fprintf(stderr, "ckpt: --plugin-opt \"%s\": expected NAME.KEY=VALUE\n", optarg);
				return 1;
			}
			snprintf(po->plugin, sizeof(po->plugin), "%.*s", (int)(dot - optarg), optarg);
			snprintf(po->key, sizeof(po->key), "%.*s", (int)(eq - dot - 1), dot + 1);
			po->value = eq + 1;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ckpt %s (plugin ABI %d.%d, image format %d)\n", CKPT_VERSION,
			       CKPT_PLUGIN_ABI_MAJOR, CKPT_PLUGIN_ABI_MINOR, IMG_FORMAT_VERSION);
			return 0;
		default:
			fprintf(stderr, "ckpt: see `ckpt --help` for the options\n");
			return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	const char *cmd = argv[optind++];
	if (!strcmp(cmd, "show") && !dir && optind < argc)
		dir = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "ckpt: unexpected argument \"%s\"; see `ckpt --help`\n", argv[optind]);
		return 1;
	}

	bool is_predump = !strcmp(cmd, "pre-dump");
	bool is_dump = !strcmp(cmd, "dump") || is_predump, is_restore = !strcmp(cmd, "restore");
	bool is_ps = !strcmp(cmd, "page-server"), is_lazy = !strcmp(cmd, "lazy-pages");
	if (!is_dump && !is_restore && strcmp(cmd, "show") && strcmp(cmd, "check") &&
	    strcmp(cmd, "plugins") && !is_ps && !is_lazy) {
		fprintf(stderr, "ckpt: unknown command \"%s\"; see `ckpt --help`\n", cmd);
		return 1;
	}
	if (cleanup && !is_predump) {
		fprintf(stderr, "ckpt: --cleanup goes with pre-dump -D DIR\n");
		return 1;
	}
	if ((prev_dir && !is_dump && !is_ps) || (track_mem && !is_dump)) {
		fprintf(stderr, "ckpt: --prev-images-dir goes with dump, pre-dump and page-server, --track-mem with dump and pre-dump\n");
		return 1;
	}
	if (track_mem && !is_predump && !leave_running) {
		fprintf(stderr, "ckpt: dump --track-mem needs -R: tracking a killed tree serves nothing\n");
		return 1;
	}
	if (prev_dir && is_ps && lazy_pages) {
		fprintf(stderr, "ckpt: page-server --prev-images-dir receives an incremental dump; it does not go with --lazy-pages\n");
		return 1;
	}
	if (is_dump && !have_pid && !cleanup) {
		fprintf(stderr, "ckpt: %s needs -t PID\n", cmd);
		return 1;
	}
	if ((page_server && (is_dump || is_lazy)) || is_ps) {
		if (!port) {
			fprintf(stderr, "ckpt: %s%s needs --port N\n", cmd,
				is_ps ? "" : " --page-server");
			return 1;
		}
	}
	if ((is_dump || is_restore || !strcmp(cmd, "show") || is_ps || is_lazy) && !dir) {
		fprintf(stderr, "ckpt: %s needs -D DIR\n", cmd);
		return 1;
	}

	char logpath[4096];
	if (logfile && logfile[0] != '/' && dir && (is_dump || is_restore || is_ps || is_lazy)) {
		/* as in CRIU: relative to the images directory */
		if (is_dump || is_ps)
			mkdir(dir, 0755);
		snprintf(logpath, sizeof(logpath), "%s/%s", dir, logfile);
		logfile = logpath;
	}
	if (log_init(logfile, verbosity))
		return 1;

	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	int ret = config_load(&cfg, cfgpath);
	if (ret)
		goto out;
	if (!verbosity_given && cfg.log_level >= 0)
		log_set_verbosity(cfg.log_level);
	for (size_t i = 0; i < npopts; i++) {
		ret = config_set(&cfg, popts[i].plugin, popts[i].key, popts[i].value);
		if (ret)
			goto out_cfg;
	}
	if (ext_veth[0]) {
		ret = config_set(&cfg, "net", "external_veth", ext_veth);
		if (ret)
			goto out_cfg;
	}
	if (externals[0]) {
		ret = config_set(&cfg, "fs", "external_mnt", externals);
		if (ret)
			goto out_cfg;
	}
	ret = plugins_load(&cfg, only);
	if (ret)
		goto out_cfg;

	if (is_dump && (compress || cfg.compress)) {
		struct pagecodec_opts co;
		pagecodec_parse(compress ? compress : cfg.compress, &co); /* checked already */
		pagecodec_set(&co);
	}
	if (cleanup) {
		ret = track_cleanup(dir);
	} else if (is_dump) {
		struct dump_opts o = { (pid_t)pid, dir, leave_running, shell_job, is_predump,
				       track_mem, prev_dir };
		/* connect before anything is seized: a missing server costs nothing */
		ret = page_server ? ps_client_connect(address, port) : 0;
		if (!ret)
			ret = cmd_dump(&o);
		ps_client_disconnect();
	} else if (is_restore) {
		struct restore_opts o = { dir, detach, pidfile, pidns, shell_job };
		ret = lazy_pages ? lazy_restore_enable(dir) : 0;
		if (!ret)
			ret = cmd_restore(&o);
	} else if (is_ps) {
		struct ps_opts o = { dir, address, port, detach, status_fd, lazy_pages, prev_dir };
		ret = cmd_page_server(&o);
	} else if (is_lazy) {
		struct lazy_opts o = { dir, page_server ? (address ? address : "127.0.0.1") : NULL,
				       port, detach, status_fd };
		ret = cmd_lazy_pages(&o);
	} else if (!strcmp(cmd, "show")) {
		ret = cmd_show(dir, json);
	} else if (!strcmp(cmd, "check")) {
		ret = cmd_check(json);
	} else {
		ret = plugins_list(json);
	}
	plugins_unload();
out_cfg:
	config_free(&cfg);
out:
	log_fini();
	return ret ? 1 : 0;
}
