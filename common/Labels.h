#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

// Labels name what a group belongs to (pod, namespace, container, pod_uid): the hook sends
// them, the service checks and keeps them with the ownership record. The rules are one
// definition for both sides.
namespace rdtmon {

using Labels = std::map<std::string, std::string>;

inline constexpr std::size_t kMaxLabels = 16;
inline constexpr std::size_t kMaxLabelKeyLength = 63;
// 253 bytes: the longest Kubernetes object name (a DNS subdomain).
inline constexpr std::size_t kMaxLabelValueBytes = 253;

// The labels the hook fills from the CRI annotations.
inline constexpr std::string_view kLabelPod = "pod";
inline constexpr std::string_view kLabelNamespace = "namespace";
inline constexpr std::string_view kLabelContainer = "container";
inline constexpr std::string_view kLabelPodUid = "pod_uid";
// The label the hook sets from the annotation org.rdtmon.counters=pinned: the container's
// group keeps assignable counters all the time (counters.maxPinned bounds how many do).
inline constexpr std::string_view kLabelCounters = "counters";
inline constexpr std::string_view kCountersPinned = "pinned";

// A key is 1..63 characters of [a-z0-9_].
bool isValidLabelKey(std::string_view key);
// What is wrong with a value, or "" when it is fine: at most 253 bytes of valid UTF-8
// (no overlong forms, no surrogates, nothing above U+10FFFF) without control characters
// (U+0000..U+001F, U+007F, U+0080..U+009F). An empty value is fine.
std::string labelValueProblem(std::string_view value);

// Throws Error(InvalidArgument) naming the first label that breaks a rule (at most 16
// labels; each key and value as above).
void validateLabels(const Labels& labels);

} // namespace rdtmon
