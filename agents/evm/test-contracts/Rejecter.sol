// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Reverts every payment: a watched address whose incoming transactions fail (tests that a
/// reverted transaction is not reported as a deposit).
contract Rejecter {
    receive() external payable {
        revert("no");
    }
}
