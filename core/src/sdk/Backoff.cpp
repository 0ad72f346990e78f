#include <agent/Backoff.h>

#include <algorithm>
#include <cmath>

namespace agent {

Backoff::Backoff(Policy policy) : policy_(policy), random_(std::random_device{}()) {}

Poco::Timespan Backoff::next() {
    const double exponent = std::min<double>(attempt_, 62);
    const double base = std::min(policy_.maxSeconds, policy_.initialSeconds * std::pow(policy_.factor, exponent));
    ++attempt_;
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const double seconds = base * jitter(random_);
    return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(seconds * Poco::Timespan::SECONDS));
}

} // namespace agent
