// Exponential backoff with jitter: the core's sink writers and any module that retries a peer
// (reporter-argus) wait with it.
#pragma once

#include <Poco/Timespan.h>

#include <random>

namespace agent {

class Backoff {
public:
    struct Policy {
        double initialSeconds = 0.5;
        double maxSeconds = 30;
        double factor = 2;
    };

    explicit Backoff(Policy policy);

    // The next wait: initial * factor^attempt, capped at max, then scaled by a random factor in
    // [0.5, 1] so that a fleet of agents that failed together does not retry together.
    Poco::Timespan next();
    void reset() { attempt_ = 0; }
    unsigned attempts() const { return attempt_; }

private:
    Policy policy_;
    unsigned attempt_ = 0;
    std::mt19937_64 random_;
};

} // namespace agent
