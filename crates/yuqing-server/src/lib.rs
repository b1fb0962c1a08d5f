//! yuqing-server
