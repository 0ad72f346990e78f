// Exponential backoff with jitter for the reporter's retries. The core's Backoff is not part of
// the SDK, so the reporter keeps this small one: the same rule, initial * 2^attempt capped at the
// maximum, then scaled by a random factor in [0.5, 1] so that a fleet that lost its master
// together does not come back together.
#pragma once

#include <chrono>
#include <random>

namespace agent::argus {

class RetryDelay {
public:
    using Duration = std::chrono::milliseconds;

    RetryDelay(Duration initial, Duration max);

    Duration next();
    void reset() { attempt_ = 0; }
    unsigned attempts() const { return attempt_; }

private:
    Duration initial_;
    Duration max_;
    unsigned attempt_ = 0;
    std::mt19937_64 random_;
};

} // namespace agent::argus
