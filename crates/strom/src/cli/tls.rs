//! `strom tls gen-dev-certs`: a local CA, a broker certificate and client certificates for
//! trying SSL, SASL_SSL and mutual TLS. Development only: the CA key sits next to the
//! certificates it signs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, Args)]
pub struct TlsArgs {
    #[command(subcommand)]
    command: TlsCommand,
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Write ca.pem, broker.pem (key + chain, for ssl.keystore.location) and one
    /// client-NAME.pem per --client (key + chain, principal User:CN=NAME).
    GenDevCerts(GenDevCertsArgs),
}

#[derive(Debug, Args)]
struct GenDevCertsArgs {
    /// Directory to write the files to (created if missing).
    #[arg(long, default_value = "strom-certs")]
    dir: PathBuf,
    /// Names and IP addresses the broker certificate is valid for.
    #[arg(long = "host", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    hosts: Vec<String>,
    /// Client certificate to make, by common name. Repeatable.
    #[arg(long = "client")]
    clients: Vec<String>,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

pub async fn run(args: TlsArgs) -> anyhow::Result<()> {
    match args.command {
        TlsCommand::GenDevCerts(args) => gen_dev_certs(&args),
    }
}

fn write(path: &Path, contents: &str, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        anyhow::bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        );
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

fn gen_dev_certs(args: &GenDevCertsArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Strom development CA");
    ca_params.distinguished_name = name;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let leaf = |common_name: &str,
                sans: Vec<String>,
                usages: Vec<ExtendedKeyUsagePurpose>|
     -> anyhow::Result<String> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.extended_key_usages = usages;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(format!(
            "{}{}{}",
            key.serialize_pem(),
            cert.pem(),
            ca_cert.pem()
        ))
    };

    write(&args.dir.join("ca.pem"), &ca_cert.pem(), args.force)?;
    write(
        &args.dir.join("ca-key.pem"),
        &ca_key.serialize_pem(),
        args.force,
    )?;
    // A broker is also a TLS client of the other brokers (replication over an SSL
    // inter-broker listener, with mutual TLS when they require it).
    let broker = leaf(
        "strom-broker",
        args.hosts.clone(),
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    )?;
    write(&args.dir.join("broker.pem"), &broker, args.force)?;
    for client in &args.clients {
        let pem = leaf(client, vec![], vec![ExtendedKeyUsagePurpose::ClientAuth])?;
        write(
            &args.dir.join(format!("client-{client}.pem")),
            &pem,
            args.force,
        )?;
    }
    let dir = args.dir.display();
    println!(
        "wrote {dir}/ca.pem, {dir}/broker.pem{}",
        args.clients
            .iter()
            .map(|c| format!(", {dir}/client-{c}.pem"))
            .collect::<String>()
    );
    println!("broker: --set listeners=PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093 --set ssl.keystore.location={dir}/broker.pem");
    println!(
        "mutual TLS: add --set ssl.client.auth=required --set ssl.truststore.location={dir}/ca.pem"
    );
    println!(
        "kcat: kcat -b 127.0.0.1:9093 -X security.protocol=ssl -X ssl.ca.location={dir}/ca.pem -L"
    );
    Ok(())
}
