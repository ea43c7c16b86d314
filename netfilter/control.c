#include "config.h"

#include "control.h"

#include <errno.h>
#include <stdbool.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <qb/qblog.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct ctl_client {
    CtlServer *server;
    int fd;
    guint watch;
    GString *in;
};

struct ctl_server {
    char *path;
    int fd;
    guint watch;
    const struct ctl_command *table;
    void *opaque;
    JsonNode *greeting;
    GList *clients;
};

static void ctl_client_close(struct ctl_client *c)
{
    CtlServer *s = c->server;

    s->clients = g_list_remove(s->clients, c);
    if (c->watch) {
        g_source_remove(c->watch);
    }
    close(c->fd);
    g_string_free(c->in, TRUE);
    g_free(c);
}

/* Send one JSON object and a newline. Replies are small and the client
 * waits for them, so a blocking write with a bound is fine; a client that
 * stops reading events is dropped. */
static bool ctl_client_send(struct ctl_client *c, JsonNode *node)
{
    g_autofree char *text = json_to_string(node, FALSE);
    g_autofree char *line = g_strconcat(text, "\n", NULL);
    size_t len = strlen(line), off = 0;

    while (off < len) {
        ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            qb_log(LOG_WARNING, "control client not reading (%s), dropped", strerror(errno));
            return false;
        }
        off += (size_t)n;
    }
    return true;
}

static JsonNode *ctl_error_reply(const char *cls, const char *desc, JsonNode *id)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "error");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "class");
    json_builder_add_string_value(b, cls);
    json_builder_set_member_name(b, "desc");
    json_builder_add_string_value(b, desc);
    json_builder_end_object(b);
    if (id) {
        json_builder_set_member_name(b, "id");
        json_builder_add_value(b, json_node_copy(id));
    }
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

static JsonNode *ctl_dispatch(CtlServer *s, const char *line)
{
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) err = NULL;
    JsonObject *obj, *args = NULL;
    JsonNode *root, *id, *exec, *ret, *reply;
    const char *name;

    if (!json_parser_load_from_data(p, line, -1, &err)) {
        return ctl_error_reply("GenericError", err->message, NULL);
    }
    root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        return ctl_error_reply("GenericError", "expected a JSON object", NULL);
    }
    obj = json_node_get_object(root);
    id = json_object_get_member(obj, "id");
    exec = json_object_get_member(obj, "execute");
    name = exec && JSON_NODE_HOLDS_VALUE(exec) && json_node_get_value_type(exec) == G_TYPE_STRING
               ? json_node_get_string(exec)
               : NULL;
    if (!name) {
        return ctl_error_reply("GenericError", "missing \"execute\"", id);
    }
    if (json_object_has_member(obj, "arguments")) {
        JsonNode *a = json_object_get_member(obj, "arguments");

        if (!JSON_NODE_HOLDS_OBJECT(a)) {
            return ctl_error_reply("GenericError", "\"arguments\" must be an object", id);
        }
        args = json_node_get_object(a);
    }
    for (const struct ctl_command *c = s->table; c->name; c++) {
        if (strcmp(c->name, name) != 0) {
            continue;
        }
        ret = c->fn(s->opaque, args, &err);
        if (!ret) {
            return ctl_error_reply("GenericError", err ? err->message : "failed", id);
        }
        reply = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(reply, json_object_new());
        json_object_set_member(json_node_get_object(reply), "return", ret);
        if (id) {
            json_object_set_member(json_node_get_object(reply), "id", json_node_copy(id));
        }
        return reply;
    }
    {
        g_autofree char *desc = g_strdup_printf("the command %s has not been found", name);

        return ctl_error_reply("CommandNotFound", desc, id);
    }
}

static gboolean ctl_client_on_read(gint fd, GIOCondition cond, gpointer data)
{
    struct ctl_client *c = data;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    char *nl;

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        c->watch = 0;
        ctl_client_close(c);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(c->in, buf, n);
    while ((nl = memchr(c->in->str, '\n', c->in->len))) {
        size_t linelen = (size_t)(nl - c->in->str);
        g_autofree char *line = g_strndup(c->in->str, linelen);
        JsonNode *reply;
        bool ok;

        g_string_erase(c->in, 0, (gssize)linelen + 1);
        if (!g_strstrip(line)[0]) {
            continue;
        }
        reply = ctl_dispatch(c->server, line);
        ok = ctl_client_send(c, reply);
        json_node_unref(reply);
        if (!ok) {
            c->watch = 0;
            ctl_client_close(c);
            return G_SOURCE_REMOVE;
        }
    }
    if (c->in->len > CTL_MAX_LINE) {
        JsonNode *reply = ctl_error_reply("GenericError", "command line too long", NULL);

        qb_log(LOG_WARNING, "control client sent a line over %u bytes, dropped", CTL_MAX_LINE);
        ctl_client_send(c, reply);
        json_node_unref(reply);
        c->watch = 0;
        ctl_client_close(c);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean ctl_on_accept(gint fd, GIOCondition cond, gpointer data)
{
    CtlServer *s = data;
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    struct ctl_client *c;

    if (cfd < 0) {
        return G_SOURCE_CONTINUE;
    }
    c = g_new0(struct ctl_client, 1);
    c->server = s;
    c->fd = cfd;
    c->in = g_string_new(NULL);
    s->clients = g_list_prepend(s->clients, c);
    if (!ctl_client_send(c, s->greeting)) {
        ctl_client_close(c);
        return G_SOURCE_CONTINUE;
    }
    c->watch = g_unix_fd_add(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR, ctl_client_on_read, c);
    return G_SOURCE_CONTINUE;
}

CtlServer *ctl_server_new(const char *path, const struct ctl_command *table, void *opaque,
                          JsonNode *greeting, GError **error)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    CtlServer *s;
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "control socket path too long: %s", path);
        json_node_unref(greeting);
        return NULL;
    }
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "socket: %s", strerror(errno));
        json_node_unref(greeting);
        return NULL;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 8) < 0) {
        int e = errno;

        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "control socket %s: %s", path, strerror(e));
        close(fd);
        json_node_unref(greeting);
        return NULL;
    }
    s = g_new0(CtlServer, 1);
    s->path = g_strdup(path);
    s->fd = fd;
    s->table = table;
    s->opaque = opaque;
    s->greeting = greeting;
    s->watch = g_unix_fd_add(fd, G_IO_IN, ctl_on_accept, s);
    return s;
}

void ctl_server_free(CtlServer *s)
{
    if (!s) {
        return;
    }
    while (s->clients) {
        ctl_client_close(s->clients->data);
    }
    g_source_remove(s->watch);
    close(s->fd);
    unlink(s->path);
    g_free(s->path);
    json_node_unref(s->greeting);
    g_free(s);
}

void ctl_server_emit(CtlServer *s, const char *event, JsonNode *data)
{
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);
    JsonObject *obj = json_object_new();
    GList *l = s->clients;

    json_object_set_string_member(obj, "event", event);
    if (data) {
        json_object_set_member(obj, "data", data);
    }
    json_node_take_object(node, obj);
    while (l) {
        GList *next = l->next;

        if (!ctl_client_send(l->data, node)) {
            ctl_client_close(l->data);
        }
        l = next;
    }
    json_node_unref(node);
}

unsigned int ctl_server_clients(const CtlServer *s)
{
    return g_list_length(s->clients);
}
