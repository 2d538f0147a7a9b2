//! The client end of every transport behind one door: an [`Address`] becomes a
//! [`Link`], and `Client::connect` / `Client::connect_with` are defined here, so the
//! client engine never names a transport.

use std::sync::Arc;

use super::{Address, stdio, tcp, unix};
use crate::client::{Client, Connect, ConnectOptions, Deadline, Link};
use crate::{Error, Result};

/// Opens links to one [`Address`] with one set of [`ConnectOptions`].
#[derive(Debug, Clone)]
pub struct AddressConnector {
    address: Address,
    options: ConnectOptions,
}

impl AddressConnector {
    /// A connector for `address`.
    pub fn new(address: Address, options: ConnectOptions) -> Self {
        AddressConnector { address, options }
    }

    /// The address it connects to.
    pub fn address(&self) -> &Address {
        &self.address
    }
}

impl Connect for AddressConnector {
    fn connect(&self, deadline: &Arc<Deadline>) -> Result<Link> {
        if self.options.shm.is_some()
            && matches!(self.address, Address::Tcp(..) | Address::Http(..))
        {
            return Err(Error::InvalidAddress {
                address: self.address.to_string(),
                reason:
                    "shared memory needs a worker on this host: use an `exec:` or `unix:` address"
                        .to_owned(),
            });
        }
        let link = match &self.address {
            Address::Exec(argv) => stdio::spawn(argv, &self.options, deadline)?,
            Address::Unix(path) => unix::connect(path, self.options.read_idle_timeout, deadline)?,
            Address::Tcp(host, port) => tcp::connect(host, *port, &self.options, deadline)?,
            Address::Http(url) => return http_connector(url, &self.options)?.connect(deadline),
        };
        match self.options.shm {
            Some(size) => with_segment(link, size),
            None => Ok(link),
        }
    }

    fn endpoint(&self) -> String {
        self.address.to_string()
    }
}

/// A connector for an `http(s)://` address.
#[cfg(feature = "http")]
fn http_connector(
    url: &str,
    options: &ConnectOptions,
) -> Result<super::http::client::HttpConnector> {
    super::http::client::HttpConnector::new(url, options)
}

#[cfg(not(feature = "http"))]
fn http_connector(url: &str, _options: &ConnectOptions) -> Result<NoHttp> {
    Err(Error::InvalidAddress {
        address: url.to_owned(),
        reason: "vgi-rpc was built without its `http` feature".to_owned(),
    })
}

/// The connector an `http(s)://` address would have: none exists without the feature.
#[cfg(not(feature = "http"))]
enum NoHttp {}

#[cfg(not(feature = "http"))]
impl NoHttp {
    fn connect(&self, _deadline: &Arc<Deadline>) -> Result<Link> {
        match *self {}
    }
}

/// Adds a fresh shared-memory segment of `size` bytes to `link`.
#[cfg(feature = "shm")]
fn with_segment(link: Link, size: usize) -> Result<Link> {
    Ok(link.with_side_channel(super::shm::ShmChannel::create(size)?))
}

#[cfg(not(feature = "shm"))]
fn with_segment(_link: Link, _size: usize) -> Result<Link> {
    Err(Error::protocol(
        "shared memory was requested, but vgi-rpc was built without its `shm` feature",
    ))
}

impl Client {
    /// Connects to `address` with default options: `exec:<command line>` starts a worker
    /// and speaks over its pipes, `unix:<path>` and `tcp://host:port` dial a socket,
    /// `http://host:port[/prefix]` calls an HTTP server (see
    /// [`Address`] for the syntax). Shared memory is an option, not an address:
    /// [`ConnectOptions::with_shm`] with [`Client::connect_with`].
    ///
    /// # Errors
    /// [`Error::InvalidAddress`](crate::Error::InvalidAddress) for a malformed address,
    /// [`Error::Connect`](crate::Error::Connect) when the worker cannot be started or the
    /// socket cannot be reached.
    pub fn connect(address: &str) -> Result<Client> {
        Self::connect_with(&address.parse()?, ConnectOptions::default())
    }

    /// Connects to `address` with `options`.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect_with(address: &Address, options: ConnectOptions) -> Result<Client> {
        // An HTTP connector keeps its runtime, pool and probed capabilities across
        // reconnects, so the client holds it directly.
        #[cfg(feature = "http")]
        if let Address::Http(url) = address {
            if options.shm.is_some() {
                return Err(Error::InvalidAddress {
                    address: url.clone(),
                    reason: "shared memory needs a worker on this host: use an `exec:` or `unix:` address".to_owned(),
                });
            }
            let connector = super::http::client::HttpConnector::new(url, &options)?;
            return Client::from_connector(Arc::new(connector), options);
        }
        let connector = AddressConnector::new(address.clone(), options.clone());
        Client::from_connector(Arc::new(connector), options)
    }
}
