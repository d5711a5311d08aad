#pragma once

// How the D-Bus handlers of ManagerObject and GroupObject fail. sdbus-c++ 1.2.0 lets
// anything but sdbus::Error escape through sd-bus's C callback, so nothing else may leave a
// handler: methods turn every exception into a named D-Bus error, property getters never
// throw at all.

#include "Errors.h"
#include "Log.h"

#include <exception>
#include <sdbus-c++/sdbus-c++.h>
#include <string>

namespace rdtmon {

// Runs a method handler's body and turns whatever it throws into a named D-Bus error, logged
// as "<method> failed: <name>: <message>" (about the container when id is not empty).
template <class F> auto translated(const char* method, const std::string& id, F&& body) {
    auto fail = [&](const std::string& name, const std::string& msg) -> sdbus::Error {
        std::string line = std::string(method) + " failed: " + name + ": " + msg;
        if (!id.empty()) {
            line = log::forContainer(id, line);
        }
        if (name == errorName(ErrorKind::Failed)) {
            log::error(line);
        } else {
            log::warning(line);
        }
        return sdbus::Error(name, msg);
    };
    try {
        return body();
    } catch (const sdbus::Error& e) {
        throw fail(e.getName(), e.getMessage());
    } catch (const Error& e) {
        throw fail(errorName(e.kind()), e.what());
    } catch (const std::exception& e) {
        throw fail(errorName(ErrorKind::Failed), e.what());
    } catch (...) {
        throw fail(errorName(ErrorKind::Failed), "unexpected error");
    }
}

// Runs a property getter's body; an unusable value is better than a dead call.
template <class T, class F> T safely(F&& body, T fallback) {
    try {
        return body();
    } catch (const std::exception& e) {
        log::error(std::string("property read failed: ") + e.what());
        return fallback;
    }
}

} // namespace rdtmon
