#include "RetryDelay.h"

#include <algorithm>
#include <cmath>

namespace agent::argus {

RetryDelay::RetryDelay(Duration initial, Duration max)
    : initial_(std::max(initial, Duration(1))), max_(std::max(max, initial_)), random_(std::random_device{}()) {}

RetryDelay::Duration RetryDelay::next() {
    constexpr double kFactor = 2;
    constexpr unsigned kMaxExponent = 62; // past this the cap has long been reached
    const double exponent = std::min(attempt_, kMaxExponent);
    const double base = std::min(static_cast<double>(max_.count()),
                                 static_cast<double>(initial_.count()) * std::pow(kFactor, exponent));
    ++attempt_;
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return Duration(std::max<long long>(1, std::llround(base * jitter(random_))));
}

} // namespace agent::argus
