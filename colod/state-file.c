/* The state file: a key file with exactly the keys version, role and
 * generation; written to a temporary file and renamed over the old one. */
#include "config.h"

#include "state-file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK(colod-state-error-quark, colod_state_error)

#define STATE_NAME "state"
#define STATE_TMP "state.tmp"
#define STATE_VERSION 1
#define STATE_GROUP "colod-state"

char *colod_state_format(const ColodStateRecord *rec)
{
    return g_strdup_printf("# colod's state of this VM: do not edit while colod runs (colo.conf(5))\n"
                           "[" STATE_GROUP "]\nversion=%d\nrole=%s\ngeneration=%" G_GUINT64_FORMAT "\n",
                           STATE_VERSION, colod_role_name(rec->role), rec->generation);
}

static bool corrupt(GError **error, const char *origin, const char *what)
{
    g_set_error(error, COLOD_STATE_ERROR, COLOD_STATE_ERROR_CORRUPT,
                "%s: corrupt state file: %s (colod will not guess the generation; see colo.conf(5))", origin,
                what);
    return false;
}

bool colod_state_parse(const char *data, gsize len, const char *origin, ColodStateRecord *out, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) groups = NULL;
    g_auto(GStrv) names = NULL;
    g_autofree char *version = NULL;
    g_autofree char *role = NULL;
    g_autofree char *gen = NULL;
    guint64 v;
    ColodStateRecord rec = { 0 };
    bool role_ok = false;

    if (memchr(data, '\0', len)) {
        return corrupt(error, origin, "NUL byte");
    }
    if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &err)) {
        return corrupt(error, origin, err->message);
    }
    groups = g_key_file_get_groups(kf, NULL);
    if (!groups[0] || groups[1] || strcmp(groups[0], STATE_GROUP) != 0) {
        return corrupt(error, origin, "not exactly one group [" STATE_GROUP "]");
    }
    names = g_key_file_get_keys(kf, STATE_GROUP, NULL, NULL);
    if (!names || g_strv_length(names) != 3) {
        return corrupt(error, origin, "not exactly the keys version, role and generation");
    }
    version = g_key_file_get_value(kf, STATE_GROUP, "version", NULL);
    role = g_key_file_get_value(kf, STATE_GROUP, "role", NULL);
    gen = g_key_file_get_value(kf, STATE_GROUP, "generation", NULL);
    if (!version || !role || !gen) {
        return corrupt(error, origin, "not exactly the keys version, role and generation");
    }
    if (!g_ascii_string_to_unsigned(version, 10, 0, G_MAXUINT32, &v, NULL) || v != STATE_VERSION) {
        g_autofree char *msg = g_strdup_printf("version \"%s\" is not %d", version, STATE_VERSION);

        return corrupt(error, origin, msg);
    }
    for (int r = 0; r < COLOD_ROLE__MAX; r++) {
        if (strcmp(role, colod_role_name(r)) == 0) {
            rec.role = r;
            role_ok = true;
        }
    }
    if (!role_ok) {
        g_autofree char *msg = g_strdup_printf("role \"%s\" unknown", role);

        return corrupt(error, origin, msg);
    }
    /* Digits only: g_ascii_string_to_unsigned takes no sign, spaces or
     * empty strings; a generation is at most 2^63 - 1 so that the peer's
     * "newest plus one" always fits. */
    if (!g_ascii_string_to_unsigned(gen, 10, 0, G_MAXINT64, &rec.generation, NULL)) {
        g_autofree char *msg = g_strdup_printf("generation \"%s\" is not a number", gen);

        return corrupt(error, origin, msg);
    }
    if (rec.role == COLOD_ROLE_NONE && rec.generation != 0) {
        return corrupt(error, origin, "role none with a generation");
    }
    *out = rec;
    return true;
}

bool colod_state_load(const char *dir, ColodStateRecord *out, bool *found, GError **error)
{
    g_autofree char *path = g_build_filename(dir, STATE_NAME, NULL);
    g_autofree char *data = NULL;
    g_autoptr(GError) err = NULL;
    gsize len;

    if (found) {
        *found = false;
    }
    if (!g_file_get_contents(path, &data, &len, &err)) {
        if (g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            out->role = COLOD_ROLE_NONE;
            out->generation = 0;
            return true;
        }
        g_set_error(error, COLOD_STATE_ERROR, COLOD_STATE_ERROR_IO, "%s", err->message);
        return false;
    }
    if (!colod_state_parse(data, len, path, out, error)) {
        return false;
    }
    if (found) {
        *found = true;
    }
    return true;
}

static bool io_error(GError **error, const char *what, const char *path, int err)
{
    g_set_error(error, COLOD_STATE_ERROR, COLOD_STATE_ERROR_IO, "%s %s: %s", what, path, g_strerror(err));
    return false;
}

static bool write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

bool colod_state_save(const char *dir, const ColodStateRecord *rec, GError **error)
{
    g_autofree char *path = g_build_filename(dir, STATE_NAME, NULL);
    g_autofree char *tmp = g_build_filename(dir, STATE_TMP, NULL);
    g_autofree char *text = colod_state_format(rec);
    int fd, dfd, e;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return io_error(error, "cannot create", tmp, errno);
    }
    if (!write_all(fd, text, strlen(text)) || fsync(fd) < 0) {
        e = errno;
        close(fd);
        unlink(tmp);
        return io_error(error, "cannot write", tmp, e);
    }
    if (close(fd) < 0) {
        e = errno;
        unlink(tmp);
        return io_error(error, "cannot write", tmp, e);
    }
    if (rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        return io_error(error, "cannot rename to", path, e);
    }
    /* The rename is durable only once the directory is. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return io_error(error, "cannot open", dir, errno);
    }
    if (fsync(dfd) < 0) {
        e = errno;
        close(dfd);
        return io_error(error, "cannot sync", dir, e);
    }
    close(dfd);
    return true;
}
