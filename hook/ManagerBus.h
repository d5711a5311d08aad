#pragma once

// rdtmon-hook's one connection to the system bus and the Manager's methods on it, on
// sd-bus directly (no sdbus-c++ to load on every container start). Its names come from
// the XML (ManagerNames.h, generated at build time).

#include "Labels.h"
#include "Names.h"
#include "rdtmon/dbus/ManagerNames.h"

#include <cstdint>
#include <optional>
#include <string>
#include <systemd/sd-bus.h>

namespace rdtmon::hook {

namespace mgr = rdtmon::xml::Manager;

// A failed call: the D-Bus error name and message, as the fail-open line shows them.
struct CallError {
    std::string name;
    std::string message;
};

// An sd-bus error for a negative errno r, named as sd-bus names it (e.g. ENOENT is
// org.freedesktop.DBus.Error.FileNotFound), as a proxy on sd-bus would report it.
CallError errnoError(int r, const std::string& what);

// One connection to the system bus and the Manager's methods on it. It never subscribes to
// signals: match rules would cost a round trip to the bus on every container start.
class ManagerBus {
public:
    ManagerBus() = default;
    ~ManagerBus() { sd_bus_close_unref(bus_); }
    ManagerBus(const ManagerBus&) = delete;
    ManagerBus& operator=(const ManagerBus&) = delete;

    // Honours DBUS_SYSTEM_BUS_ADDRESS, which is how tests use a private bus.
    std::optional<CallError> connect() {
        int r = sd_bus_open_system(&bus_);
        if (r < 0) {
            return errnoError(r, "cannot connect to the system bus");
        }
        return std::nullopt;
    }

    // Calls method with the arguments append() adds; nullopt on success. read(), when
    // given, reads the reply (a negative errno fails the call).
    template <class Append>
    std::optional<CallError> call(const mgr::Method& method, std::uint64_t timeoutUsec,
                                  Append&& append) {
        return call(
            method, timeoutUsec, append, [](sd_bus_message*) { return 0; }, false);
    }
    template <class Append, class Read>
    std::optional<CallError> call(const mgr::Method& method, std::uint64_t timeoutUsec,
                                  Append&& append, Read&& read, bool wantReply = true) {
        sd_bus_message* m = nullptr;
        int r = sd_bus_message_new_method_call(bus_, &m, rdtmon::kBusName, rdtmon::kManagerPath,
                                               mgr::kInterface, method.name);
        Message msg{m};
        if (r >= 0) {
            r = append(m);
        }
        if (r < 0) {
            return errnoError(r, std::string("cannot build the ") + method.name + " call");
        }
        sd_bus_error error{}; // SD_BUS_ERROR_NULL
        sd_bus_message* reply = nullptr;
        r = sd_bus_call(bus_, m, timeoutUsec, &error, wantReply ? &reply : nullptr);
        Message replyMsg{reply};
        std::optional<CallError> out;
        if (r < 0) {
            out = sd_bus_error_is_set(&error)
                      ? CallError{error.name, error.message != nullptr ? error.message : ""}
                      : errnoError(r, std::string(method.name) + " failed");
        } else if (wantReply && (r = read(reply)) < 0) {
            out = errnoError(r, std::string("cannot read the reply of ") + method.name);
        }
        sd_bus_error_free(&error);
        return out;
    }

    // Sends method with the arguments append() adds and no reply expected: returns once the
    // message is written to the bus (after the connection's own set-up), never waiting for
    // the service. The bus still starts an activatable service for it.
    template <class Append>
    std::optional<CallError> send(const mgr::Method& method, Append&& append) {
        sd_bus_message* m = nullptr;
        int r = sd_bus_message_new_method_call(bus_, &m, rdtmon::kBusName, rdtmon::kManagerPath,
                                               mgr::kInterface, method.name);
        Message msg{m};
        if (r >= 0) {
            r = append(m);
        }
        if (r >= 0) {
            r = sd_bus_message_set_expect_reply(m, 0);
        }
        if (r < 0) {
            return errnoError(r, std::string("cannot build the ") + method.name + " call");
        }
        r = sd_bus_send(bus_, m, nullptr);
        if (r >= 0) {
            r = sd_bus_flush(bus_);
        }
        if (r < 0) {
            return errnoError(r, std::string("cannot send ") + method.name);
        }
        return std::nullopt;
    }

private:
    struct Message {
        sd_bus_message* m;
        ~Message() { sd_bus_message_unref(m); }
    };
    sd_bus* bus_ = nullptr;
};

// Appends labels as the a{ss} argument.
int appendLabels(sd_bus_message* m, const rdtmon::Labels& labels);

} // namespace rdtmon::hook
